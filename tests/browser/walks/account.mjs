// The person's own account page, walked in Chromium after the user guide's walk (walk.mjs calls
// `walkAccount` once per language, size and JavaScript setting). A person with long, realistic
// values (an e-mail address of more than 40 characters, a double family name) logs in and goes
// through the overview, the language, the sessions, the security events and the data
// download; with JavaScript the step-up gate and the changes are walked too (phone size: new
// mobile number and new e-mail address; desktop: new password), and the account is closed.
// Axe checks every page; no page may scroll sideways at 320 px.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The words of the account pages in `lang`, with the pages' common words. */
function words(root, lang) {
  const out = {};
  for (const file of ['main.ftl', 'account.ftl']) {
    for (const line of readFileSync(join(root, 'locales', lang, file), 'utf8').split('\n')) {
      const m = line.match(/^([a-z0-9-_]+) = (.*)$/);
      if (m) out[m[1]] = m[2];
    }
  }
  return out;
}

export async function walkAccount({ browser, lang, size, js, n, root, IDP, BIN, axe, failures, outbox, screenshots }) {
  const t = words(root, lang);
  const tag = `account ${lang}/${size}/${js ? 'js' : 'nojs'}`;
  const label = (page, text) => page.getByLabel(new RegExp(`^${escape(text)}( \\*)?$`));
  const button = (page, text) => page.getByRole('button', { name: text, exact: true });
  const link = (page, text) => page.getByRole('link', { name: text, exact: true });
  const context = await browser.newContext({
    // The narrowest phones: no page may scroll sideways at 320 px.
    viewport: size === 'phone' ? { width: 320, height: 640 } : { width: 1280, height: 800 },
    locale: lang === 'de' ? 'de-CH' : `${lang}-CH`,
    javaScriptEnabled: js,
    acceptDownloads: true,
    extraHTTPHeaders: { 'x-forwarded-for': `10.2.${n}.${js ? 1 : 2}` },
  });
  const page = await context.newPage();
  const seen = async (name, expectedLang = lang) => {
    const html = await page.locator('html').getAttribute('lang');
    if (html !== expectedLang) failures.push(`${tag} ${name}: <html lang="${html}">`);
    if (!js) return;
    await axe(page, `${tag} ${name}`);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    if (scroll > client) failures.push(`${tag} ${name}: the page is ${scroll}px wide on a ${client}px screen`);
    if (screenshots && lang === 'fr') {
      mkdirSync(screenshots, { recursive: true });
      await page.screenshot({ path: join(screenshots, `${size}-account-${name}.png`), fullPage: true });
    }
  };
  const sms = async (to) => (await outbox(context, to)).match(/\b\d{6}\b/)[0];

  // Support creates the account: long address, double family name, the walk's language.
  const suffix = `${lang}${size}${js ? 'j' : 'n'}${n}`;
  const email = `anna-lena.bernasconi-rossi.${suffix}@gemeinde-beispiel.ch`;
  const password = 'Lindenhof-Aussicht-1893';
  const mobile = `+4179${String(7000000 + n * 10 + (js ? 1 : 2))}`;
  execFileSync(BIN, ['admin', 'account', 'create', '--realm', 'AK00', '--email', email, '--password-stdin',
    '--given-name', 'Anna-Lena', '--family-name', 'Bernasconi-Rossi Müller', '--phone', mobile, '--language', lang],
  { input: `${password}\n`, encoding: 'utf8', env: process.env });

  // Login, which ends on the account page.
  await page.goto(`${IDP}/AK00/login?lang=${lang}`);
  await label(page, t['login-email']).fill(email);
  await label(page, t['login-password']).fill(password);
  await button(page, t['login-submit']).click();
  await label(page, t['login-sms-label']).fill(await sms(mobile));
  await button(page, t['login-sms-submit']).click();
  await page.waitForURL(`${IDP}/AK00/account`);
  await seen('overview');
  if (!(await page.getByText(email).count())) failures.push(`${tag}: the overview does not show the address`);
  if (!(await page.getByText('Bernasconi-Rossi Müller').count())) failures.push(`${tag}: the overview does not show the name`);

  // The language: another one, then back; the page follows each time.
  const other = lang === 'de' ? 'fr' : 'de';
  await label(page, t['account-language-label']).selectOption(other);
  await button(page, t['account-language-submit']).click();
  await seen('language-changed', other);
  const o = words(root, other);
  await label(page, o['account-language-label']).selectOption(lang);
  await button(page, o['account-language-submit']).click();
  await seen('language-back');
  if (!(await page.getByText(t['account-done-language']).count())) failures.push(`${tag}: no notice after the language`);

  // Sessions and recent events.
  await link(page, t['account-sessions-link']).click();
  await seen('sessions');
  if (!(await page.getByText(t['account-session-current']).count())) failures.push(`${tag}: this session is not marked`);
  await link(page, t['account-back']).click();
  await link(page, t['account-events-link']).click();
  await seen('events');
  if (!(await page.getByText(t['event-login'], { exact: true }).count())) failures.push(`${tag}: the login is not among the events`);
  await link(page, t['account-back']).click();

  // My data: the download is the person's JSON.
  await link(page, t['account-data-link']).click();
  await seen('data');
  const [download] = await Promise.all([page.waitForEvent('download'), link(page, t['account-data-download']).click()]);
  const data = JSON.parse(readFileSync(await download.path(), 'utf8'));
  if (data.account?.email !== email) failures.push(`${tag}: the download names ${data.account?.email}`);
  if (JSON.stringify(data).includes('$argon2')) failures.push(`${tag}: the download holds a password hash`);

  if (!js) {
    await context.close();
    console.log(`ok ${tag}: overview, language, sessions, events, data`);
    return;
  }

  /** Passes the gate for the action behind `linkText`: password if asked, then the SMS code. */
  const stepUp = async (linkText, name, to) => {
    await page.goto(`${IDP}/AK00/account`);
    await link(page, linkText).click();
    await seen(`confirm-${name}`);
    if (await label(page, t['stepup-password']).count()) await label(page, t['stepup-password']).fill(password);
    await button(page, t['continue']).click();
    await seen(`confirm-code-${name}`);
    await label(page, t['stepup-code-label']).fill(await sms(to));
    await button(page, t['stepup-code-submit']).click();
  };

  let number = mobile;
  if (size === 'phone') {
    // A new mobile number, proved by its own code.
    const next = `+4178${String(7000000 + n * 10 + 1)}`;
    await stepUp(t['account-change-phone'], 'phone', number);
    await seen('phone');
    await label(page, t['account-phone-new']).fill(next);
    await button(page, t['continue']).click();
    await seen('phone-code');
    await label(page, t['stepup-code-label']).fill(await sms(next));
    await button(page, t['account-phone-code-submit']).click();
    await seen('phone-done');
    if (!(await page.getByText(t['account-done-phone']).count())) failures.push(`${tag}: no notice after the new number`);
    number = next;
    // A new e-mail address, proved by the code sent to it.
    const newEmail = `a.bernasconi-rossi.mueller.${suffix}@beispiel-wohngemeinde.ch`;
    await stepUp(t['account-change-email'], 'email', number);
    await seen('email');
    await label(page, t['account-email-new']).fill(newEmail);
    await button(page, t['continue']).click();
    await seen('email-code');
    const code = (await outbox(context, newEmail)).match(/[A-Z2-9]{4} [A-Z2-9]{4} [A-Z2-9]{4}/)[0];
    await label(page, t['account-email-code-label']).fill(code);
    await button(page, t['account-email-code-submit']).click();
    await seen('email-done');
    if (!(await page.getByText(newEmail).count())) failures.push(`${tag}: the overview does not show the new address`);
  } else {
    // A new password.
    await stepUp(t['account-change-password'], 'password', number);
    await seen('password');
    await label(page, t['account-password-new']).fill('Rheinfall-Schaffhausen-1965');
    await label(page, t['enrol-password-confirm']).fill('Rheinfall-Schaffhausen-1965');
    await button(page, t['account-password-submit']).click();
    await seen('password-done');
    if (!(await page.getByText(t['account-done-password']).count())) failures.push(`${tag}: no notice after the new password`);
  }

  // Closing the account, with its consequences on the page first.
  await page.goto(`${IDP}/AK00/account/data`);
  await link(page, t['account-close-link']).click();
  await seen('confirm-close');
  const closing = size === 'phone' ? password : 'Rheinfall-Schaffhausen-1965';
  await label(page, t['stepup-password']).fill(closing);
  await button(page, t['continue']).click();
  await label(page, t['stepup-code-label']).fill(await sms(number));
  await button(page, t['stepup-code-submit']).click();
  await seen('close');
  await button(page, t['account-close-submit']).click();
  await seen('closed');
  if (!(await page.getByText(t['account-closed-title']).count())) failures.push(`${tag}: the account is not closed`);
  await context.close();
  console.log(`ok ${tag}: overview, language, sessions, events, data, ${size === 'phone' ? 'new number and address' : 'new password'}, closed`);
}
