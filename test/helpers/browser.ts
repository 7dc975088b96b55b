/**
 * A real browser for the web page's tests: Debian's Chromium (installed by
 * scripts/test.mjs like nats-server), driven by playwright-core, which never
 * downloads a browser of its own. Kept off every network but the service's
 * loopback address; each launch gets a fresh profile (Playwright makes a new
 * temporary --user-data-dir per launch and removes it on close).
 */
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { TEST_USERS } from './stack.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: FLAGS });
}

/** A context of its own (its own cookies) at a phone's or a desk's size. */
export function newContext(browser: Browser, size: 'phone' | 'desk' = 'desk'): Promise<BrowserContext> {
  return browser.newContext(
    size === 'phone'
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 900 } },
  );
}

/** Open `path` (signed out it shows the sign-in), sign in as `user`, and wait for the page to be drawn. */
export async function signInAt(page: Page, base: string, path: string, user: keyof typeof TEST_USERS): Promise<void> {
  await page.goto(`${base}${path}`);
  await page.locator('#sign-in input[name=username]').fill(user);
  await page.locator('#sign-in input[name=password]').fill(TEST_USERS[user].password);
  await page.locator('#sign-in button[type=submit]').click();
  await page.locator('#sign-in').waitFor({ state: 'detached' });
}
