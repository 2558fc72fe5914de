// The support desk's console (issue 13) in a real Chromium: a supervisor added with
// `connect admin staff add` opens the invitation mail's link, gives names, a password and
// accepts the terms, registers a passkey; then opens AK00's console, which sends them to the
// staff realm's login (the passkey alone), finds a person by AHV number, sees the mobile
// number masked, locks and unlocks the account with a reason (an empty one refused first),
// reads the audit pages and logs out. The authenticator is Chromium's virtual one (DevTools
// protocol `WebAuthn.enable` and `WebAuthn.addVirtualAuthenticator`), as in passkey.mjs.
//
// WebAuthn refuses IP addresses: this walk starts its own `connect dev` at
// http://localhost:8280, with its own data directory and a copy of realm-config/ whose staff
// realm names that host in the console client's redirect URIs, and stops it at the end. French
// and German (the staff realm's languages) at phone size, French also at desktop size, axe-core
// on every new page, no sideways scroll, long realistic values.

import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PORT = 8280;
const IDP = `http://localhost:${PORT}`;

/** The words of the pages, from the same Fluent files the server uses. */
function words(root, lang) {
  const out = {};
  for (const file of ['main.ftl', 'staff.ftl', 'console.ftl', 'passkeys.ftl']) {
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
const link = (page, text) => page.getByRole('link', { name: text, exact: true });
/** The text of a message before its first placeable. */
const before = (s) => s.split('{')[0].trim();

/** A valid AHV number (EAN-13 check digit) for walk `n`, as walk.mjs makes them. */
function ahv(n) {
  const body = `756${String(900000000 + n).padStart(9, '0')}`;
  const sum = [...body].reduce((s, d, i) => s + Number(d) * (i % 2 ? 3 : 1), 0);
  const check = (10 - (sum % 10)) % 10;
  return `${body.slice(0, 3)}.${body.slice(3, 7)}.${body.slice(7, 11)}.${body.slice(11)}${check}`;
}

async function healthy() {
  try {
    return (await fetch(`${IDP}/healthz`)).ok;
  } catch {
    return false;
  }
}

/**
 * Starts `connect dev` under a host name, with the realms of a copy of realm-config/ whose
 * console client redirects to that host; returns its environment and a stop function.
 */
async function startServer(bin, root) {
  const data = mkdtempSync(join(tmpdir(), 'connect-console-'));
  const realms = join(data, 'realm-config');
  cpSync(join(root, 'realm-config'), realms, { recursive: true });
  const staff = join(realms, 'STAFF.toml');
  writeFileSync(staff, readFileSync(staff, 'utf8').replaceAll('http://127.0.0.1:8080/', `${IDP}/`));
  const env = {
    ...process.env,
    CONNECT_DATA_DIR: join(data, 'data'),
    CONNECT_REALM_DIR: realms,
    CONNECT_BIND: `127.0.0.1:${PORT}`,
    CONNECT_PUBLIC_URL: IDP,
    CONNECT_METRICS_BIND: '127.0.0.1:9476',
    CONNECT_PORTAL_BIND: '127.0.0.1:8290',
    CONNECT_PORTAL_URL: 'http://127.0.0.1:8290',
    CONNECT_PORTAL__METRICS_BIND: '127.0.0.1:9477',
    CONNECT_LOG_LEVEL: 'warn',
  };
  mkdirSync(env.CONNECT_DATA_DIR);
  const log = [];
  const server = spawn(bin, ['dev'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', (d) => log.push(String(d)));
  for (let i = 0; i < 150 && !(await healthy()); i += 1) {
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!(await healthy())) {
    server.kill();
    throw new Error(`the console walk's server did not start: ${log.join('').slice(-2000)}`);
  }
  const stop = async () => {
    server.kill();
    await new Promise((r) => server.once('exit', r));
    rmSync(data, { recursive: true, force: true });
  };
  return { env, stop, log };
}

/** The latest text sent to `to`, from the dev outbox page. */
async function outbox(context, to) {
  const page = await context.newPage();
  await page.goto(`${IDP}/_dev/outbox`);
  const text = await page.locator('article.outbox-item').filter({ hasText: to }).first().locator('pre').textContent();
  await page.close();
  return text;
}

/**
 * Walks the console. `kit` is what walk.mjs shares: the browser, the binary, the repository
 * root, axe (`axe(page, where)`), `failures` to push to, the languages, and the screenshot
 * directory if any.
 */
export async function consoleWalk(kit) {
  const { browser, bin, root, axe, failures, langs, screenshots } = kit;
  const mine = langs.filter((l) => ['fr', 'de'].includes(l));
  if (!mine.length) return;
  const { env, stop, log } = await startServer(bin, root);
  // `connect admin` on this walk's data, as the operator « walk ».
  const admin = (input, ...args) =>
    execFileSync(bin, ['admin', '--operator', 'walk', ...args], { encoding: 'utf8', env, input });
  try {
    let n = 0;
    for (const lang of mine) {
      for (const size of lang === 'fr' ? ['phone', 'desktop'] : ['phone']) {
        n += 1;
        await walk({ browser, admin, root, axe, failures, screenshots }, lang, size, n);
      }
    }
  } catch (e) {
    const tail = log.join('').split('\n').slice(-20).join('\n');
    throw new Error(`${e.stack ?? e}\n--- console walk's server log\n${tail}`);
  } finally {
    await stop();
  }
}

async function walk({ browser, admin, root, axe, failures, screenshots }, lang, size, n) {
  const t = words(root, lang);
  const tag = `console ${lang}/${size}`;
  const viewport = size === 'phone' ? { width: 320, height: 720 } : { width: 1280, height: 800 };
  const context = await browser.newContext({
    viewport,
    locale: lang === 'de' ? 'de-CH' : `${lang}-CH`,
    extraHTTPHeaders: { 'x-forwarded-for': `10.5.${n}.1` },
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
      await page.screenshot({ path: join(screenshots, `${size}-console-${String(step).padStart(2, '0')}-${name}.png`), fullPage: true });
    }
  };
  const heading = async (name, text) => {
    const h1 = (await page.locator('h1').first().textContent())?.trim();
    if (h1 !== text) failures.push(`${tag} ${name}: the heading is « ${h1} », not « ${text} »`);
  };

  // Chromium's virtual authenticator: a platform authenticator that verifies the user. It
  // belongs to this page, which the whole walk uses (the outbox opens in other tabs).
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

  // 1. A supervisor of AK00, invited by mail.
  const email = `marie-claire.bernasconi-vuilleumier.${lang}.${size}@support.ausgleichskasse-beispiel.ch`;
  const added = admin(undefined, 'staff', 'add', '--realm', 'STAFF', '--email', email, '--role', 'supervisor',
    '--caisse', 'AK00', '--language', lang);
  if (!added.includes(email)) failures.push(`${tag}: staff add said « ${added.trim()} »`);
  const mail = await outbox(context, email);
  const invitation = mail.match(new RegExp(`${escape(IDP)}/STAFF/staff/enrol/[^\\s"<>]+`))?.[0];
  if (!invitation) throw new Error(`${tag}: no enrolment link in the invitation mail:\n${mail}`);

  // 2. The enrolment: names, a password twice, the terms; then the passkey; then done.
  await page.goto(invitation);
  await seen('staff-enrol');
  await heading('staff-enrol', t['staff-enrol-title']);
  if ((await page.locator('#email').inputValue()) !== email) failures.push(`${tag}: the enrolment page does not show the invited address`);
  const given = lang === 'de' ? 'Anna-Barbara Regula' : 'Marie-Claire Anne-Sophie';
  const family = lang === 'de' ? 'Bernasconi-Vuilleumier von Graffenried' : 'Bernasconi-Vuilleumier de Montmollin';
  const password = 'Glacier-Aletsch-Wanderweg-2026';
  await label(page, t['enrol-given-name']).fill(given);
  await label(page, t['enrol-family-name']).fill(family);
  await label(page, t['enrol-password-label']).fill(password);
  await label(page, t['enrol-password-confirm']).fill(password);
  await label(page, t['enrol-terms-accept']).check();
  await button(page, t.continue).click();
  await page.waitForURL(`${IDP}/STAFF/staff/passkey`);
  await seen('staff-passkey');
  await heading('staff-passkey', t['staff-passkey-title']);
  const keyName = lang === 'de' ? 'Arbeitsplatz Marie-Claire (Büro 4.12, Bern)' : 'Poste de Marie-Claire (bureau 4.12, Lausanne)';
  await label(page, t['passkeys-name']).fill(keyName);
  await button(page, t['passkeys-create']).click();
  await page.waitForURL(`${IDP}/STAFF/staff/done`);
  await seen('staff-done');
  await heading('staff-done', t['staff-done-title']);
  if (!(await page.getByText(before(t['staff-done-intro'])).first().isVisible())) failures.push(`${tag}: the done page does not thank`);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  if (credentials.length !== 1 || !credentials[0].isResidentCredential) failures.push(`${tag}: no discoverable credential on the authenticator`);
  const consoleLink = page.getByRole('link', { name: /AK00/ }).first();
  const consoleHref = (await consoleLink.count()) ? await consoleLink.getAttribute('href') : null;
  if (!['/AK00/console', `${IDP}/AK00/console`].includes(consoleHref)) failures.push(`${tag}: the done page links the console at ${consoleHref}`);

  // 3. A person of AK00's register with an account and a mobile number.
  const number = ahv(n);
  const mobile = `+4179${String(5550000 + n * 37).slice(-7)}`;
  const subscriber = mobile.slice(-7);
  admin(undefined, 'person', 'add', '--realm', 'AK00', '--ahv', number, '--given-name', 'Anna', '--family-name', 'Muster',
    '--birth-date', '1952-03-14', '--language', lang, '--address', 'Chemin des Vignes-de-la-Côte 117, 1095 Lutry');
  admin('Bise-Leman-Promenade-1952\n', 'account', 'create', '--realm', 'AK00', '--email',
    `anna.muster-${lang}-${size}@beispiel-mail.ch`, '--password-stdin', '--given-name', 'Anna', '--family-name', 'Muster',
    '--ahv', number, '--phone', mobile, '--language', lang);

  // 4. The console, from the done page's link: the staff realm's login, passkey only.
  await context.clearCookies();
  if (consoleHref) await consoleLink.click();
  else await page.goto(`${IDP}/AK00/console`);
  await page.waitForURL((u) => u.origin === IDP && u.pathname.startsWith('/STAFF/') && !u.pathname.startsWith('/STAFF/staff/'));
  await seen('staff-login');
  await heading('staff-login', t['staff-login-title']);
  if (await page.locator('input[type=password]').count()) failures.push(`${tag}: a password field on the staff login`);
  await button(page, t['passkey-login-button']).click();
  await page.waitForURL(`${IDP}/AK00/console`);
  await seen('search');
  await heading('search', t['console-search-title']);
  const bar = page.getByRole('navigation', { name: t['console-nav'] });
  if (!(await bar.getByText(email).isVisible())) failures.push(`${tag}: the console bar does not name ${email}`);
  if (!(await bar.getByText(t['console-role-supervisor']).isVisible())) failures.push(`${tag}: the console bar does not say supervisor`);

  // 5. The person by AHV number typed without dots; the number masked.
  await label(page, t['console-search-label']).fill(number.replaceAll('.', ''));
  await button(page, t['console-search-submit']).click();
  await page.waitForURL(`${IDP}/AK00/console/search`);
  await seen('results');
  const found = page.locator('ul.lines li');
  if ((await found.count()) !== 1) failures.push(`${tag}: ${await found.count()} results for ${number}`);
  await found.first().getByRole('link').click();
  await page.waitForURL(`${IDP}/AK00/console/people/**`);
  const person = page.url().split('?')[0];
  await seen('person');
  await heading('person', 'Anna Muster');
  const masked = `+41 79 *** ** ${subscriber.slice(-2)}`;
  const phoneFact = page.locator(`dt:text-is("${t['console-phone']}") + dd`);
  if (!((await phoneFact.textContent()) ?? '').startsWith(masked)) failures.push(`${tag}: the person's page does not show ${masked}`);
  const bare = (await page.content()).replace(/[\s.\-/]/g, '');
  if (bare.includes(subscriber)) failures.push(`${tag}: the person's page shows the full mobile number ${mobile}`);
  const state = page.locator('dd .badge').first();
  if ((await state.textContent())?.trim() !== t['console-state-active']) failures.push(`${tag}: state « ${await state.textContent()} » before the lock`);

  /** One action of the person's page with a reason; back on the person's page. */
  const act = async (key, name, reason) => {
    if (page.url().split('?')[0] !== person) await page.goto(person);
    await page.getByRole('link', { name: t[key], exact: true }).click();
    await page.waitForURL(`${person}/**`);
    await seen(name);
    await heading(name, t[key]);
    const field = label(page, t['console-reason']);
    return { field, submit: () => button(page, t[key]).click(), reason };
  };

  const lockReason = lang === 'de'
    ? 'Anruf der Person am 12.11.2026: Mobiltelefon am Bahnhof Bern gestohlen, Ticket SD-2026-004217'
    : 'Appel de la personne le 12.11.2026 : téléphone volé à la gare de Lausanne, ticket SD-2026-004217';
  const unlockReason = lang === 'de'
    ? 'Neues Telefon erhalten, Identität per Rückruf auf die Registernummer geprüft, Ticket SD-2026-004217'
    : 'Nouveau téléphone reçu, identité vérifiée par rappel au numéro du registre, ticket SD-2026-004217';

  // Lock: first with no reason, then with spaces only. The form is `novalidate`, like every
  // form of connect: the server answers both, asking for a reason on the same page.
  const lock = await act('console-do-lock', 'lock', lockReason);
  const actUrl = page.url();
  await lock.submit();
  await page.waitForTimeout(300);
  if (page.url() !== actUrl) failures.push(`${tag}: an empty reason left the page for ${page.url()}`);
  if (!(await page.locator('#reason-error').isVisible())) failures.push(`${tag}: an empty reason is not refused`);
  await lock.field.fill('   ');
  await lock.submit();
  await page.locator('#reason-error').waitFor();
  await seen('lock-reason-empty');
  const error = (await page.locator('#reason-error').textContent())?.trim();
  if (error !== t['console-reason-empty']) failures.push(`${tag}: the empty reason says « ${error} »`);
  if ((await lock.field.getAttribute('aria-invalid')) !== 'true') failures.push(`${tag}: the empty reason's field is not aria-invalid`);
  if (!(await lock.field.getAttribute('aria-describedby'))?.includes('reason-error')) failures.push(`${tag}: the reason's error is not tied to its field`);
  await lock.field.fill(lockReason);
  await lock.submit();
  await page.waitForURL((u) => u.href.split('?')[0] === person && u.searchParams.has('done'));
  await seen('locked');
  const doneLock = `${before(t['console-done'])} ${t['console-do-lock']}.`;
  if ((await page.getByRole('status').textContent())?.trim() !== doneLock) failures.push(`${tag}: no « ${doneLock} » after the lock`);
  if ((await page.locator('dd .badge').first().textContent())?.trim() !== t['console-state-locked']) failures.push(`${tag}: the state is not « ${t['console-state-locked']} » after the lock`);

  // Unlock, with its reason.
  const unlock = await act('console-do-unlock', 'unlock', unlockReason);
  await unlock.field.fill(unlockReason);
  await unlock.submit();
  await page.waitForURL((u) => u.href.split('?')[0] === person && u.searchParams.has('done'));
  await seen('unlocked');
  const doneUnlock = `${before(t['console-done'])} ${t['console-do-unlock']}.`;
  if ((await page.getByRole('status').textContent())?.trim() !== doneUnlock) failures.push(`${tag}: no « ${doneUnlock} » after the unlock`);
  if ((await page.locator('dd .badge').first().textContent())?.trim() !== t['console-state-active']) failures.push(`${tag}: the state is not « ${t['console-state-active']} » after the unlock`);
  for (const reason of [lockReason, unlockReason]) {
    if (!(await page.getByText(reason).count())) failures.push(`${tag}: the person's events do not list « ${reason} »`);
  }

  // The audit pages: mine, then everyone's (a supervisor's).
  await bar.getByRole('link', { name: t['console-audit-mine'], exact: true }).click();
  await page.waitForURL(`${IDP}/AK00/console/audit`);
  await seen('audit-mine');
  await heading('audit-mine', t['console-audit-mine']);
  for (const reason of [lockReason, unlockReason]) {
    if (!(await page.getByText(reason).count())) failures.push(`${tag}: « ${t['console-audit-mine']} » does not list « ${reason} »`);
  }
  await bar.getByRole('link', { name: t['console-audit-all'], exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/AK00/console/audit' && u.searchParams.get('all') === '1');
  await seen('audit-all');
  await heading('audit-all', t['console-audit-all']);
  if (!(await page.getByText(lockReason).count())) failures.push(`${tag}: « ${t['console-audit-all']} » does not list the lock`);

  // 6. Logged out: the staff realm asks to confirm, then the console asks for the login again.
  await bar.getByRole('button', { name: t['console-logout'], exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/STAFF/logout');
  await seen('logout-confirm');
  await button(page, t['logout-submit']).click();
  await page.waitForURL((u) => u.origin === IDP && u.pathname.startsWith('/STAFF/') && u.pathname !== '/STAFF/logout');
  await seen('logged-out');
  await heading('logged-out', t['staff-login-title']);
  await page.goto(`${IDP}/AK00/console/audit`);
  if (!page.url().startsWith(`${IDP}/STAFF/`)) failures.push(`${tag}: after the logout the console still opens (${page.url()})`);
  await context.close();
  console.log(`ok ${tag}: enrolled with a passkey, logged in to the console, locked and unlocked ${number}, logged out`);
}
