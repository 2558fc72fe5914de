// The authenticator app and recovery codes, walked in Chromium in each language on a 320 px
// wide screen: a person adds an app from the account page (the code computed here from the
// secret the page shows as text, RFC 6238 with node:crypto), writes down the recovery codes,
// then logs in with the app, with a recovery code, and switches to SMS. axe-core checks every
// page, and none may scroll sideways.
//
// Called from walk.mjs with what it shares: { browser, IDP, BIN, outbox, axe, failures, langs }.

import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The words of the pages this walk sees, from the server's own Fluent files. */
function words(lang) {
  const out = {};
  for (const file of ['main.ftl', 'factors.ftl', 'account.ftl']) {
    for (const line of readFileSync(join(root, 'locales', lang, file), 'utf8').split('\n')) {
      const m = line.match(/^([a-z0-9-_]+) = (.*)$/);
      if (m) out[m[1]] = m[2];
    }
  }
  return out;
}

/** RFC 4648 base32, as the page shows the secret (groups of four, no padding). */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/\s/g, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The six digits an app shows at `unixSeconds` (RFC 6238: HMAC-SHA-1, 30 s, RFC 4226 truncation). */
function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const label = (page, text) => page.getByLabel(new RegExp(`^${escape(text)}( \\*)?$`));
const button = (page, text) => page.getByRole('button', { name: text, exact: true });
const link = (page, text) => page.getByRole('link', { name: text, exact: true });

export default async function appWalk({ browser, IDP, BIN, outbox, axe, failures, langs, screenshots }) {
  const admin = (args, input) => execFileSync(BIN, ['admin', ...args], { encoding: 'utf8', env: process.env, input });
  let n = 0;
  for (const lang of langs) {
    n += 1;
    const t = words(lang);
    const tag = `app/${lang}/320`;
    // A long address and a double family name: nothing may run past the screen's edge.
    const email = `anna-maria.bernasconi-${lang}-walk-app@beispiel-ausgleichskasse.ch`;
    const mobile = `+4179${String(5550000 + n)}`;
    const password = 'Aare-Ufer-Spaziergang-2026';
    admin(['account', 'create', '--realm', 'AK00', '--email', email, '--password-stdin', '--given-name', 'Anna-Maria',
      '--family-name', 'Bernasconi-Muster', '--phone', mobile, '--language', lang], `${password}\n`);

    const newContext = (i) => browser.newContext({
      viewport: { width: 320, height: 640 },
      locale: `${lang}-CH`,
      extraHTTPHeaders: { 'x-forwarded-for': `10.7.${n}.${i}` },
    });
    const seen = async (page, name) => {
      await axe(page, `${tag} ${name}`);
      const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      if (scroll > client) failures.push(`${tag} ${name}: the page is ${scroll}px wide on a ${client}px screen`);
      const html = await page.locator('html').getAttribute('lang');
      if (html !== lang) failures.push(`${tag} ${name}: <html lang="${html}">`);
      if (screenshots && lang === 'fr') {
        mkdirSync(screenshots, { recursive: true });
        await page.screenshot({ path: join(screenshots, `phone-app-${name}.png`), fullPage: true });
      }
    };
    const login = async (page) => {
      await page.goto(`${IDP}/AK00/login?lang=${lang}`);
      await label(page, t['login-email']).fill(email);
      await label(page, t['login-password']).fill(password);
      await button(page, t['login-submit']).click();
    };

    // Logged in with SMS, the person adds an app.
    const first = await newContext(1);
    let page = await first.newPage();
    await login(page);
    const sms = (await outbox(first, mobile)).match(/\b\d{6}\b/)[0];
    await label(page, t['login-sms-label']).fill(sms);
    await button(page, t['login-sms-submit']).click();
    await page.waitForURL(`${IDP}/AK00/account**`);
    // The account page's gate asks for the password and a fresh SMS code first.
    await page.goto(`${IDP}/AK00/account`);
    await seen(page, 'account-overview');
    await link(page, t['account-app-link']).click();
    await page.waitForURL(`${IDP}/AK00/account/confirm**`);
    await seen(page, 'confirm-app');
    await label(page, t['stepup-password']).fill(password);
    await button(page, t['continue']).click();
    await page.waitForURL(`${IDP}/AK00/account/confirm/code**`);
    const fresh = (await outbox(first, mobile)).match(/\b\d{6}\b/)[0];
    await label(page, t['stepup-code-label']).fill(fresh);
    await button(page, t['stepup-code-submit']).click();
    await page.waitForURL(`${IDP}/AK00/account/app`);
    await seen(page, 'account-app-add');
    if ((await page.locator('figure.qr svg').count()) !== 1) failures.push(`${tag}: no QR code drawn`);
    const secret = (await page.locator('#secret').textContent()).trim();
    await label(page, t['factors-app-step-code']).fill(totp(secret, Date.now() / 1000));
    await button(page, t['factors-app-submit']).click();
    await seen(page, 'recovery-codes-new');
    const codes = await page.locator('ol.codes code').allTextContents();
    if (codes.length !== 10) failures.push(`${tag}: ${codes.length} recovery codes shown`);
    await page.goto(`${IDP}/AK00/account/app`);
    await seen(page, 'account-app-registered');
    await page.goto(`${IDP}/AK00/account/recovery-codes`);
    await seen(page, 'account-recovery-codes');
    await first.close();

    // On another device: the app is asked first. Its code of the next step (RFC 6238 allows
    // one step ahead) is one the enrolment did not spend.
    const second = await newContext(2);
    page = await second.newPage();
    await login(page);
    await page.waitForURL(`${IDP}/AK00/login/app**`);
    await seen(page, 'login-app');
    await label(page, t['login-app-label']).fill(totp(secret, Date.now() / 1000 + 30));
    await button(page, t['login-sms-submit']).click();
    await page.waitForURL(`${IDP}/AK00/account**`);
    await second.close();

    // And another: a recovery code, then (from a new login) the switch to SMS.
    const third = await newContext(3);
    page = await third.newPage();
    await login(page);
    await page.waitForURL(`${IDP}/AK00/login/app**`);
    await link(page, t['login-use-recovery-code']).click();
    await seen(page, 'login-recovery-code');
    await label(page, t['login-recovery-label']).fill(codes[0].toLowerCase());
    await button(page, t['login-sms-submit']).click();
    await page.waitForURL(`${IDP}/AK00/account**`);
    await third.close();

    const fourth = await newContext(4);
    page = await fourth.newPage();
    await login(page);
    await page.waitForURL(`${IDP}/AK00/login/app**`);
    await button(page, t['login-use-sms']).click();
    await seen(page, 'login-sms-switched');
    const code = (await outbox(fourth, mobile)).match(/\b\d{6}\b/)[0];
    await label(page, t['login-sms-label']).fill(code);
    await button(page, t['login-sms-submit']).click();
    await page.waitForURL(`${IDP}/AK00/account**`);
    await fourth.close();
    console.log(`ok ${tag}: app added, ten recovery codes, logged in with the app, a recovery code and SMS`);
  }
}
