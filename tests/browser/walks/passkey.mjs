// Passkeys in a real Chromium (issue 12): a person adds a passkey from the account page,
// renames it, logs out and in again with the passkey alone; a relying party asks for the
// phishing-resistant class and gets the passkey prompt and an ID token with that `acr`.
// The authenticator is Chromium's virtual one (DevTools protocol `WebAuthn.enable` and
// `WebAuthn.addVirtualAuthenticator`), which verifies the user and keeps discoverable
// credentials as a phone would.
//
// WebAuthn refuses IP addresses, and the main walk's server answers at 127.0.0.1: this walk
// starts its own `connect dev` whose public URL is http://localhost:8180, with its own data
// directory, and stops it at the end. Four languages at phone size (French also at desktop
// size), axe-core on every new page, no sideways scroll at 320 px, long realistic values.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PORT = 8180;
const IDP = `http://localhost:${PORT}`;
const CLIENT_REDIRECT = 'http://127.0.0.1:8090/callback';

/** The words of the pages, from the same Fluent files the server uses. */
function words(root, lang) {
  const out = {};
  for (const file of ['main.ftl', 'passkeys.ftl', 'account.ftl', 'factors.ftl']) {
    for (const line of readFileSync(join(root, 'locales', lang, file), 'utf8').split('\n')) {
      const m = line.match(/^([a-z0-9-_]+) = (.*)$/);
      if (m) out[m[1]] = m[2];
    }
  }
  return out;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const label = (page, text) => page.getByLabel(new RegExp(`^${escape(text)}( \\*)?$`));
const button = (page, text) => page.getByRole('button', { name: text, exact: true });

async function healthy() {
  try {
    return (await fetch(`${IDP}/healthz`)).ok;
  } catch {
    return false;
  }
}

/** Starts `connect dev` under a host name; returns its environment and a stop function. */
async function startServer(bin) {
  const data = mkdtempSync(join(tmpdir(), 'connect-passkey-'));
  const env = {
    ...process.env,
    CONNECT_DATA_DIR: data,
    CONNECT_BIND: `127.0.0.1:${PORT}`,
    CONNECT_PUBLIC_URL: IDP,
    CONNECT_METRICS_BIND: '127.0.0.1:9474',
    CONNECT_PORTAL_BIND: '127.0.0.1:8190',
    CONNECT_PORTAL_URL: 'http://127.0.0.1:8190',
    CONNECT_PORTAL__METRICS_BIND: '127.0.0.1:9475',
    CONNECT_LOG_LEVEL: 'warn',
  };
  const server = spawn(bin, ['dev'], { env, stdio: 'ignore' });
  for (let i = 0; i < 150 && !(await healthy()); i += 1) {
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!(await healthy())) {
    server.kill();
    throw new Error('the passkey walk\'s server did not start');
  }
  const stop = async () => {
    server.kill();
    await new Promise((r) => server.once('exit', r));
    rmSync(data, { recursive: true, force: true });
  };
  return { env, stop };
}

/** The latest text sent to `to`, from the dev outbox page. */
async function outbox(context, to) {
  const page = await context.newPage();
  await page.goto(`${IDP}/_dev/outbox`);
  const text = await page.locator('article.outbox-item').filter({ hasText: to }).first().locator('pre').textContent();
  await page.close();
  return text;
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Walks the passkey pages. `kit` is what walk.mjs shares: the browser, the binary, the
 * repository root, axe (`axe(page, where)`), `failures` to push to, the languages, and the
 * screenshot directory if any.
 */
export async function passkeyWalk(kit) {
  const { browser, bin, root, axe, failures, langs, screenshots } = kit;
  const { env, stop } = await startServer(bin);
  // `connect admin` on this walk's data; `input` is its standard input.
  const admin = (input, ...args) => execFileSync(bin, ['admin', ...args], { encoding: 'utf8', env, input });
  try {
    let n = 0;
    for (const lang of langs) {
      for (const size of lang === 'fr' ? ['phone', 'desktop'] : ['phone']) {
        n += 1;
        await walk({ browser, admin, root, axe, failures, screenshots }, lang, size, n);
      }
    }
  } finally {
    await stop();
  }
}

async function walk({ browser, admin, root, axe, failures, screenshots }, lang, size, n) {
  const t = words(root, lang);
  const tag = `passkey ${lang}/${size}`;
  const viewport = size === 'phone' ? { width: 320, height: 720 } : { width: 1280, height: 800 };
  const context = await browser.newContext({
    viewport,
    locale: lang === 'de' ? 'de-CH' : `${lang}-CH`,
    extraHTTPHeaders: { 'x-forwarded-for': `10.3.${n}.1` },
  });
  const page = await context.newPage();
  let step = 0;
  const seen = async (name) => {
    step += 1;
    await axe(page, `${tag} ${name}`);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    if (scroll > client) failures.push(`${tag} ${name}: the page is ${scroll}px wide on a ${client}px screen`);
    const html = await page.locator('html').getAttribute('lang');
    if (html !== lang) failures.push(`${tag} ${name}: <html lang="${html}">`);
    if (screenshots && lang === 'fr') {
      mkdirSync(screenshots, { recursive: true });
      await page.screenshot({ path: join(screenshots, `${size}-passkey-${String(step).padStart(2, '0')}-${name}.png`), fullPage: true });
    }
  };

  // Chromium's virtual authenticator: a phone's platform authenticator that verifies the user.
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  // A person with a long address and a double family name, made by support.
  const email = `anna-lena.muster-bernasconi.${lang}.${size}@beispiel-ausgleichskasse.ch`;
  const mobile = `+4179${String(5550000 + n).slice(-7)}`;
  const password = 'Aare-Ufer-Spaziergang-2026';
  admin(`${password}\n`, 'account', 'create', '--realm', 'AK00', '--email', email, '--password-stdin',
    '--given-name', 'Anna-Lena', '--family-name', 'Muster-Bernasconi', '--phone', mobile, '--language', lang);

  // Logged in with password and SMS code.
  await page.goto(`${IDP}/AK00/login?lang=${lang}`);
  await seen('login-with-passkey-offer');
  if (!(await button(page, t['passkey-login-button']).isVisible())) failures.push(`${tag}: the login page offers no passkey`);
  await label(page, t['login-email']).fill(email);
  await label(page, t['login-password']).fill(password);
  await button(page, t['login-submit']).click();
  const sms = (await outbox(context, mobile)).match(/\b\d{6}\b/)[0];
  await label(page, t['login-sms-label']).fill(sms);
  await button(page, t['login-sms-submit']).click();
  await page.waitForURL(`${IDP}/AK00/account`);

  /** The account page's gate: the password, then a fresh SMS code; back on the list. */
  const stepUp = async (name) => {
    await page.waitForURL(`${IDP}/AK00/account/confirm?next=passkeys`);
    await seen(`confirm-${name}`);
    await label(page, t['stepup-password']).fill(password);
    await button(page, t['continue']).click();
    await page.waitForURL(`${IDP}/AK00/account/confirm/code**`);
    await label(page, t['stepup-code-label']).fill((await outbox(context, mobile)).match(/\b\d{6}\b/)[0]);
    await button(page, t['stepup-code-submit']).click();
    await page.waitForURL(`${IDP}/AK00/account/passkeys`);
  };

  // The passkeys of the account page: none yet, then one, after the gate.
  await page.goto(`${IDP}/AK00/account/passkeys`);
  await seen('passkeys-none');
  await page.getByRole('link', { name: t['passkeys-add'] }).click();
  await stepUp('add');
  await page.getByRole('link', { name: t['passkeys-add'] }).click();
  await seen('passkeys-new');
  const name = 'iPhone 15 de Anna-Lena (bureau, 2e étage)';
  await label(page, t['passkeys-name']).fill(name);
  await button(page, t['passkeys-create']).click();
  // The first passkey comes with ten recovery codes, shown once.
  await page.locator('ol.codes').waitFor();
  await seen('passkeys-recovery-codes');
  const codes = await page.locator('ol.codes code').allTextContents();
  if (codes.length !== 10) failures.push(`${tag}: ${codes.length} recovery codes shown with the first passkey`);
  await page.getByRole('link', { name: t['factors-codes-done'] }).click();
  await page.waitForURL(/\/AK00\/account\/passkeys\?done=added/);
  await seen('passkeys-added');
  if (!(await page.getByText(name, { exact: true }).isVisible())) failures.push(`${tag}: the new passkey is not listed`);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  if (credentials.length !== 1 || !credentials[0].isResidentCredential) failures.push(`${tag}: no discoverable credential on the authenticator`);

  // Renamed, and the removal page seen (kept).
  await page.getByRole('link', { name: new RegExp(`^${escape(t['passkeys-rename'])}`) }).first().click();
  await seen('passkeys-rename');
  await label(page, t['passkeys-name']).fill('Téléphone');
  await button(page, t['passkeys-rename-submit']).click();
  await page.waitForURL(/done=renamed/);
  await page.getByRole('link', { name: new RegExp(`^${escape(t['passkeys-remove'])}`) }).first().click();
  await stepUp('remove');
  await page.getByRole('link', { name: new RegExp(`^${escape(t['passkeys-remove'])}`) }).first().click();
  await seen('passkeys-remove');
  await page.getByRole('link', { name: t['passkeys-cancel'] }).click();

  // Logged out, then in again with the passkey alone.
  await page.goto(`${IDP}/AK00/account`);
  await button(page, t['logout-submit']).click();
  await page.goto(`${IDP}/AK00/login?lang=${lang}`);
  // With a discoverable passkey on the device, the page offers it in the e-mail field's
  // suggestions (conditional mediation), which Chromium's virtual authenticator takes at once;
  // a browser without that shows the button, which the person presses.
  const offered = await page.waitForURL(`${IDP}/AK00/account`, { timeout: 3000 }).then(() => true, () => false);
  if (!offered) await button(page, t['passkey-login-button']).click();
  await page.waitForURL(`${IDP}/AK00/account`);
  await page.goto(`${IDP}/AK00/account/passkeys`);
  if (!(await page.getByText(t['passkeys-last-used'].split('{')[0].trim()).first().isVisible())) {
    failures.push(`${tag}: the last use is not shown`);
  }

  // A relying party asks for phishing resistance: only the passkey path, then that acr.
  await button(page, t['logout-submit']).click().catch(() => {});
  await context.clearCookies();
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const query = new URLSearchParams({
    client_id: 'portal', redirect_uri: CLIENT_REDIRECT, response_type: 'code', scope: 'openid',
    state: `s${n}`, nonce: `n${n}`, code_challenge: challenge, code_challenge_method: 'S256',
    acr_values: 'urn:connect:acr:phishing-resistant', ui_locales: lang,
  });
  let callback = null;
  await context.route(`${CLIENT_REDIRECT}**`, (route) => {
    callback = route.request().url();
    return route.fulfill({ status: 200, contentType: 'text/plain', body: 'ok' });
  });
  await page.goto(`${IDP}/AK00/authorize?${query}`);
  await seen('login-passkey-required');
  if (await page.locator('input[type=password]').count()) failures.push(`${tag}: a password field on the passkey-only page`);
  await button(page, t['passkey-login-button']).click();
  await page.waitForURL(`${CLIENT_REDIRECT}**`);
  // Playwright does not route the hops of a redirect chain: the address reached tells the code.
  const code = new URL(callback ?? page.url()).searchParams.get('code');
  const tokens = await fetch(`${IDP}/AK00/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('portal:portal-dev-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CLIENT_REDIRECT, code_verifier: verifier }),
  }).then((r) => r.json());
  const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString());
  if (claims.acr !== 'urn:connect:acr:phishing-resistant') failures.push(`${tag}: ID token acr ${claims.acr}`);
  if (!claims.amr?.includes('user')) failures.push(`${tag}: ID token amr ${claims.amr}`);
  await context.close();
  console.log(`ok ${tag}: added, renamed, logged in with a passkey alone, acr ${claims.acr} amr ${claims.amr}`);
}
