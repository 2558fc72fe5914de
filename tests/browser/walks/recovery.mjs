// Recovery without a phone call, walked in Chromium on a 320 px wide phone in each language:
// « Mot de passe oublié ? » from the login page (address, the mail's code, the SMS code, a new
// password, then the login with it), and « J'ai perdu mon téléphone » up to the request of a
// new letter. axe-core checks every page; no page may scroll sideways.
//
// Called from walk.mjs with its browser and tools: { IDP, outbox, axe, failures, langs }.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BIN = process.env.CONNECT_TEST_BIN;

/** The words of the pages, from the same Fluent files the server uses. */
function words(lang) {
  const out = {};
  for (const file of ['main.ftl', 'recovery.ftl']) {
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

/** A valid AHV number (EAN-13 check digit) for recovery walk `n`. */
function ahv(n) {
  const body = `756${String(800000000 + n).padStart(9, '0')}`;
  const sum = [...body].reduce((s, d, i) => s + Number(d) * (i % 2 ? 3 : 1), 0);
  const check = (10 - (sum % 10)) % 10;
  return `${body.slice(0, 3)}.${body.slice(3, 7)}.${body.slice(7, 11)}.${body.slice(11)}${check}`;
}

function admin(args, input) {
  return execFileSync(BIN, ['admin', ...args], { encoding: 'utf8', env: process.env, input });
}

export async function walkRecovery(browser, { IDP, outbox, axe, failures, langs, screenshots }) {
  let n = 0;
  for (const lang of langs) {
    n += 1;
    const t = words(lang);
    const tag = `recovery/${lang}/320`;
    const context = await browser.newContext({
      viewport: { width: 320, height: 720 },
      locale: lang === 'de' ? 'de-CH' : `${lang}-CH`,
      extraHTTPHeaders: { 'x-forwarded-for': `10.4.${n}.1` },
    });
    const page = await context.newPage();
    const seen = async (name) => {
      await axe(page, `${tag} ${name}`);
      const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      if (scroll > client) failures.push(`${tag} ${name}: the page is ${scroll}px wide on a ${client}px screen`);
      const html = await page.locator('html').getAttribute('lang');
      if (html !== lang) failures.push(`${tag} ${name}: <html lang="${html}">`);
      if (screenshots && lang === 'fr') {
        mkdirSync(screenshots, { recursive: true });
        await page.screenshot({ path: join(screenshots, `phone-recovery-${name}.png`), fullPage: true });
      }
    };

    // A person of the register with an account: a long address, a double family name.
    const number = ahv(n);
    const email = `jeanne-marie.recovery-walk-${lang}.${Date.now()}@example-caisse.ch`;
    const mobile = `+4179${String(5560000 + n)}`;
    admin(['person', 'add', '--realm', 'AK00', '--ahv', number, '--given-name', 'Jeanne-Marie',
      '--family-name', 'Muster-Rüegsegger von Allmen', '--birth-date', '1948-11-02', '--language', lang,
      '--address', 'Chemin des Grands-Champs 128, 1700 Fribourg']);
    admin(['account', 'create', '--realm', 'AK00', '--email', email, '--password-stdin',
      '--given-name', 'Jeanne-Marie', '--family-name', 'Muster-Rüegsegger von Allmen', '--ahv', number,
      '--phone', mobile, '--language', lang], 'Ancien-Mot-de-passe-1948\n');

    // « Mot de passe oublié ? » from the login page.
    await page.goto(`${IDP}/AK00/login?lang=${lang}`);
    await link(page, t['forgot-link']).click();
    await seen('forgot');
    await label(page, t['login-email']).fill(email);
    await button(page, t['continue']).click();
    await seen('forgot-mail-code');
    // The mail goes out just after the answer.
    let mail = null;
    for (let i = 0; i < 50 && !mail; i += 1) {
      mail = await outbox(context, email).catch(() => null);
      if (!mail) await new Promise((r) => setTimeout(r, 100));
    }
    const code = mail.match(/[A-Z2-9]{4} [A-Z2-9]{4} [A-Z2-9]{4}/)[0];
    await label(page, t['forgot-mail-label']).fill(code);
    await button(page, t['continue']).click();
    await seen('forgot-sms');
    const sms = (await outbox(context, mobile)).match(/\b\d{6}\b/)[0];
    await label(page, t['login-sms-label']).fill(sms);
    await button(page, t['continue']).click();
    await seen('forgot-new-password');
    const password = `Neues-Passwort-${lang}-2026`;
    await label(page, t['forgot-new-label']).fill(password);
    await label(page, t['enrol-password-confirm']).fill(password);
    await button(page, t['forgot-new-submit']).click();
    await seen('forgot-done');
    await link(page, t['recovery-to-login']).click();

    // The login with the new password and a new SMS code.
    await seen('login-after-recovery');
    await label(page, t['login-email']).fill(email);
    await label(page, t['login-password']).fill(password);
    await button(page, t['login-submit']).click();
    const again = (await outbox(context, mobile)).match(/\b\d{6}\b/)[0];
    await label(page, t['login-sms-label']).fill(again);
    await button(page, t['login-sms-submit']).click();
    if (!page.url().endsWith('/AK00/account')) failures.push(`${tag}: not logged in after the recovery: ${page.url()}`);

    // « J'ai perdu mon téléphone »: e-mail and password ask for a new letter.
    await page.goto(`${IDP}/AK00/login?lang=${lang}`);
    await link(page, t['lost-phone-link']).click();
    await seen('lost-phone');
    await label(page, t['login-email']).fill(email);
    await label(page, t['login-password']).fill(password);
    await button(page, t['lost-phone-submit']).click();
    await seen('lost-phone-requested');
    const said = await page.locator('h1').textContent();
    if (said !== t['lost-phone-requested-title']) failures.push(`${tag}: letter request page says "${said}"`);
    await context.close();
    console.log(`ok ${tag}: forgotten password replaced, logged in, letter requested`);
  }
}
