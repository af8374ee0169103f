/**
 * Parley Console in a real browser: Debian's Chromium driven by playwright-core, against a test server
 * (createTestApp) that serves a console built for this test process.
 *
 * `consoleSuite()` sets up one server and one browser for a test file. Its `test` gives each test fresh pages
 * (one browser context each: its own sessionStorage) and, for each page:
 * - collects console errors and uncaught page errors, and fails the test if any happened (unless the test
 *   said it expects one, e.g. a 401 for a wrong key);
 * - records every request, and aborts any that leaves the test server, so that a page that tries to load a
 *   remote image (say) is caught, not served;
 * - on failure, saves a screenshot under os.tmpdir()/parley-browser/ and prints its path.
 */
import { execFile } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { createTestApp, type TestApp, type TestUser } from "./server";
import type { Env } from "../../src/config";

/** Debian's package; scripts/install-chromium.sh installs it. PARLEY_CHROMIUM names another binary. */
export const CHROMIUM_PATH = process.env.PARLEY_CHROMIUM ?? "/usr/bin/chromium";

/** Where screenshots go: of failed tests, and those a test takes on purpose. */
export const SCREENSHOT_DIR = path.join(os.tmpdir(), "parley-browser");

const ROOT = path.resolve(__dirname, "../..");

let built: Promise<string> | undefined;

/**
 * Builds the console once per test process, into a folder of its own (CONSOLE_DIR): a build running in the
 * working tree meanwhile (npm run build) cannot change what the tests load.
 */
export function buildConsoleForTests(): Promise<string> {
  built ??= (async () => {
    const dir = path.join(os.tmpdir(), `parley-console-test-${process.pid}`);
    await promisify(execFile)(process.execPath, [path.join(ROOT, "scripts", "build-console.js"), "--out", dir], { cwd: ROOT });
    process.once("exit", () => rmSync(dir, { recursive: true, force: true })); // exit handlers run synchronously
    return dir;
  })();
  return built;
}

export async function launchChromium(): Promise<Browser> {
  // As the PostgreSQL setup does for pgvector: installed on first use where it can be (root, Debian's package).
  if (!existsSync(CHROMIUM_PATH)) await promisify(execFile)(path.join(ROOT, "scripts", "install-chromium.sh"), { cwd: ROOT }).catch(() => undefined);
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM_PATH}: run scripts/install-chromium.sh (Debian package chromium, needs root), or set PARLEY_CHROMIUM`);
  }
  // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ["--no-sandbox"], headless: true });
}

export interface PageOptions {
  width?: number;
  height?: number;
  colorScheme?: "light" | "dark";
}

export interface ConsolePage {
  page: Page;
  /** Every URL the page asked for, in order. */
  requests: string[];
  /** Requests that would have left the test server (aborted). */
  offsite: string[];
  /** GraphQL operations the page sent over HTTP: name and variables. */
  operations: { operationName: string | undefined; variables: Record<string, unknown> }[];
  /** Console errors and uncaught exceptions so far, except those expected. */
  errors(): string[];
  /** Lets console errors matching `pattern` through (a test that provokes one). */
  expectConsoleError(pattern: RegExp): void;
  /** Opens a console path (default /console) on the test server. */
  goto(pathname?: string): Promise<void>;
  /**
   * Signs in through the form and waits for the signed-in page, the conversations, to have loaded its list: the
   * landing page's requests are over before the test goes on (they would otherwise land in what it counts next).
   */
  signIn(token: string): Promise<void>;
}

export interface ConsoleTestContext {
  /** A new page in a context of its own. */
  open(options?: PageOptions): Promise<ConsolePage>;
}

export interface ConsoleSuite {
  readonly app: TestApp;
  readonly browser: Browser;
  /** A jest test with pages from `open`, checked for errors after the body, screenshot on failure. */
  test(name: string, body: (context: ConsoleTestContext) => Promise<void>, timeout?: number): void;
}

function fileName(name: string): string {
  return name.replace(/[^\w.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 120) || "test";
}

/** Saves a screenshot of the page as SCREENSHOT_DIR/<name>.png; returns the path. */
export async function screenshot(page: Page, name: string, dir = SCREENSHOT_DIR): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `${fileName(name)}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/** A conversation of `owner`'s, made through the API. */
export async function createConversation(app: TestApp, owner: TestUser, title: string): Promise<string> {
  const data = await app.ok<{ createConversation: { id: string } }>(`mutation($title: String!) { createConversation(input: { title: $title }) { id } }`, { title }, owner.token);
  return data.createConversation.id;
}

/** A message added through the API (`input` adds to or overrides AddMessageInput). */
export async function addMessage(app: TestApp, token: string, conversationId: string, content: string, input: Record<string, unknown> = {}): Promise<{ id: string; seq: number }> {
  const data = await app.ok<{ addMessage: { id: string; seq: number } }>(
    `mutation($input: AddMessageInput!) { addMessage(input: $input) { id seq } }`,
    { input: { conversationId, content, ...input } },
    token,
  );
  return data.addMessage;
}

async function openPage(browser: Browser, baseUrl: string, options: PageOptions = {}): Promise<ConsolePage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1440, height: options.height ?? 900 },
    colorScheme: options.colorScheme ?? "light",
    serviceWorkers: "block",
  });
  const page = await context.newPage();
  const origin = new URL(baseUrl).origin;
  const consoleErrors: string[] = [];
  const expected: RegExp[] = [];
  const requests: string[] = [];
  const offsite: string[] = [];
  const operations: ConsolePage["operations"] = [];

  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(`console.error: ${message.text()} (${message.location().url})`);
  });
  page.on("pageerror", (error) => consoleErrors.push(`uncaught: ${error.stack ?? error.message}`));
  page.on("request", (request) => {
    requests.push(request.url());
    if (request.method() === "POST" && new URL(request.url()).pathname === "/graphql") {
      const body = request.postDataJSON() as { query?: string; variables?: Record<string, unknown> } | null;
      const name = /(?:query|mutation)\s+(\w+)/.exec(body?.query ?? "")?.[1];
      operations.push({ operationName: name, variables: body?.variables ?? {} });
    }
  });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith("data:")) return route.continue();
    offsite.push(url);
    return route.abort("blockedbyclient");
  });

  return {
    page,
    requests,
    offsite,
    operations,
    errors: () => consoleErrors.filter((error) => !expected.some((pattern) => pattern.test(error))),
    expectConsoleError: (pattern) => void expected.push(pattern),
    async goto(pathname = "/console") {
      await page.goto(`${origin}${pathname}`);
    },
    async signIn(token: string) {
      if (!page.url().startsWith(`${origin}/console`)) await page.goto(`${origin}/console`);
      await page.getByLabel("API key or JWT").fill(token);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByTestId("viewer-name").waitFor();
      await page.locator('[data-testid="conversation-list"][aria-busy="false"]').waitFor({ state: "attached" });
    },
  };
}

/** One test server (with the console built and enabled) and one Chromium for the test file. */
export function consoleSuite(env: Env = {}): ConsoleSuite {
  let app: TestApp | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    const dir = await buildConsoleForTests();
    [app, browser] = await Promise.all([createTestApp({ CONSOLE_ENABLED: "true", CONSOLE_DIR: dir, ...env }), launchChromium()]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.dispose();
  });

  return {
    get app() {
      if (!app) throw new Error("the console suite has not started");
      return app;
    },
    get browser() {
      if (!browser) throw new Error("the console suite has not started");
      return browser;
    },
    test(name, body, timeout) {
      it(
        name,
        async () => {
          const pages: ConsolePage[] = [];
          const context: ConsoleTestContext = {
            open: async (options) => {
              const opened = await openPage(browser!, app!.url, options);
              pages.push(opened);
              return opened;
            },
          };
          try {
            await body(context);
            const errors = pages.flatMap((opened) => opened.errors());
            if (errors.length) throw new Error(`the page logged errors:\n${errors.join("\n")}`);
            const offsite = pages.flatMap((opened) => opened.offsite);
            if (offsite.length) throw new Error(`the page asked for other hosts:\n${offsite.join("\n")}`);
          } catch (error) {
            for (const [index, opened] of pages.entries()) {
              const file = await screenshot(opened.page, `${name}${pages.length > 1 ? `-${index + 1}` : ""}`).catch(() => undefined);
              if (file) console.error(`Screenshot of the failed test "${name}": ${file}`);
            }
            throw error;
          } finally {
            await Promise.all(pages.map((opened) => opened.page.context().close().catch(() => undefined)));
          }
        },
        timeout,
      );
    },
  };
}
