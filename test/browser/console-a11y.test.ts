/**
 * Parley Console for keyboards and assistive technology, in Chromium against a real server:
 * - with the keyboard alone (page.keyboard: Tab, Enter, Escape), in the light and the dark theme: signing in,
 *   the skip link, opening a conversation, its panels (closed by Escape, focus handed back) and sending a
 *   message; every stop on the way shows a focus outline that stands out from what is behind it;
 * - axe-core on every page (sign-in, conversations, a chat, usage, each admin section) at 375 and 1440 px, in
 *   both themes: no violation of impact "serious" or "critical".
 */
import path from "node:path";
import type { Page } from "playwright-core";
import { Role } from "../../src/modules/user/role.enum";
import { addMessage, consoleSuite, createConversation, type ConsolePage, type ConsoleTestContext } from "../helpers/browser";
import type { TestUser } from "../helpers/server";

const suite = consoleSuite();
const AXE = path.join(path.dirname(require.resolve("axe-core/package.json")), "axe.min.js");
const THEMES = ["light", "dark"] as const;

let admin: TestUser;
let alice: TestUser;
let worker: TestUser;
/** Has spent past a hard budget (so cannot write: the keyboard test writes as Alice). */
let spender: TestUser;
/** Admin's conversation with one message of each kind the chat draws. */
let chatId: string;

beforeAll(async () => {
  [admin, alice, worker, spender] = await Promise.all([
    suite.app.makeUser(Role.ADMIN, "Ada Admin"),
    suite.app.makeUser(Role.MEMBER, "Alice Liddell"),
    suite.app.makeUser(Role.SERVICE, "gpt-worker"),
    suite.app.makeUser(Role.MEMBER, "Sam Spender"),
  ]);
  const ok = (query: string, variables: Record<string, unknown>) => suite.app.ok(query, variables, admin.token);

  chatId = await createConversation(suite.app, admin, "Everything the chat draws");
  await suite.app.grant(worker, { conversationId: chatId });
  await addMessage(suite.app, admin.token, chatId, "Show me **Markdown**, please.");
  await addMessage(
    suite.app,
    worker.token,
    chatId,
    [
      "## A heading",
      "",
      "Some `inline code`, a [link](https://example.org/docs), and:",
      "",
      "> a quotation",
      "",
      "- one",
      "- two",
      "",
      "```ts",
      `const wide = "${"x".repeat(160)}"; // a line wider than the screen`,
      "```",
      "",
      "| model | calls |",
      "|---|---|",
      "| gpt-4o | 12 |",
    ].join("\n"),
    { role: "ASSISTANT", model: "gpt-4o", toolCalls: [{ id: "call-1", type: "function", function: { name: "search_docs", arguments: "{}" } }] },
  );

  // Usage, alerts of each severity, budgets (one spent), and rows for every admin table.
  for (const [index, model] of ["gpt-4o", "claude-sonnet-4", "llama-3.1-8b"].entries()) {
    await ok(`mutation($input: RecordAiRequestInput!) { recordAiRequest(input: $input) { id } }`, {
      input: { requestId: `a11y-${index}`, model, provider: "test", promptTokens: 100, completionTokens: 50, costUsd: 3, status: index === 2 ? "ERROR" : "SUCCESS", userId: spender.user.id },
    });
  }
  for (const severity of ["INFO", "WARNING", "CRITICAL"]) {
    await ok(`mutation($input: RaiseAlertInput!) { raiseAlert(input: $input) { id } }`, { input: { severity, source: "a11y", message: `A ${severity.toLowerCase()} alert` } });
  }
  const acknowledged = await suite.app.ok<{ raiseAlert: { id: string } }>(`mutation { raiseAlert(input: { severity: WARNING, source: "a11y", message: "Seen already" }) { id } }`, {}, admin.token);
  await ok(`mutation($id: UUID!) { acknowledgeAlert(id: $id) { id } }`, { id: acknowledged.raiseAlert.id });
  await ok(`mutation($input: SetBudgetInput!) { setBudget(input: $input) { id } }`, { input: { userId: spender.user.id, limitUsd: 5, period: "MONTHLY", enforcement: "HARD" } });
  await ok(`mutation($input: SetBudgetInput!) { setBudget(input: $input) { id } }`, { input: { guildId: "123456789012345678", limitUsd: 50, period: "WEEKLY" } });
  await ok(`mutation($input: GrantServiceInput!) { grantService(input: $input) { id } }`, { input: { serviceId: worker.user.id, origin: "DISCORD" } });
  await ok(`mutation { createApiKey(name: "reporting", role: MEMBER) { id } }`, {});
  const revoked = await suite.app.ok<{ createApiKey: { id: string } }>(`mutation { createApiKey(name: "old laptop") { id } }`, {}, admin.token);
  await ok(`mutation($id: UUID!) { revokeApiKey(id: $id) { id } }`, { id: revoked.createApiKey.id });
  await ok(`mutation($id: UUID!) { deactivateUser(id: $id) { id } }`, { id: (await suite.app.makeUser(Role.MEMBER, "Former member")).user.id });
  await ok(`mutation { setGuildConfig(guildId: "123456789012345678", settings: { language: "simple" }) { guildId } }`, {});
  await ok(`mutation { setSystemConfig(key: "retention", value: { metricsDays: 30 }) { key } }`, {});
}, 60_000);

// --- Keyboard ---------------------------------------------------------------------------------------------

interface Stop {
  /** The focused element, for messages. */
  name: string;
  matches: boolean;
  /** Why its focus does not show, if it does not. */
  problem: string | null;
}

/**
 * Where focus is, whether it matches `selector`, and whether its outline shows: drawn (2 px at least), not cut
 * off by a box that clips or scrolls, in a colour with 3:1 contrast against the background behind it (WCAG
 * 1.4.11; an outline outside the element lies on its parent's background, one inside on the element's own).
 */
function focusStop(page: Page, selector: string): Promise<Stop> {
  return page.evaluate((selector) => {
    const element = document.activeElement ?? document.body;
    const name = `${element.tagName.toLowerCase()} "${(element.getAttribute("aria-label") ?? element.textContent ?? "").trim().slice(0, 40)}"`;
    const matches = element.matches(selector);
    const style = getComputedStyle(element);
    const [width, offset] = [parseFloat(style.outlineWidth), parseFloat(style.outlineOffset)];
    if (style.outlineStyle === "none" || width < 2) return { name, matches, problem: `no outline (${style.outlineStyle} ${style.outlineWidth})` };
    const box = element.getBoundingClientRect();
    const out = Math.max(0, offset + width);
    const ring = { left: box.left - out, right: box.right + out, top: box.top - out, bottom: box.bottom + out };
    for (let node = element.parentElement; node; node = node.parentElement) {
      if (getComputedStyle(node).overflow === "visible") continue;
      const outer = node.getBoundingClientRect();
      const inner = { left: outer.left + node.clientLeft, top: outer.top + node.clientTop, right: outer.left + node.clientLeft + node.clientWidth, bottom: outer.top + node.clientTop + node.clientHeight };
      if (ring.left < inner.left - 0.5 || ring.top < inner.top - 0.5 || ring.right > inner.right + 0.5 || ring.bottom > inner.bottom + 0.5) {
        return { name, matches, problem: `outline cut off by ${node.tagName.toLowerCase()}.${[...node.classList].join(".")}` };
      }
    }
    const channels = (color: string) => (color.match(/[\d.]+/g) ?? []).map(Number);
    let behind = [255, 255, 255];
    for (let node = offset < 0 ? element : element.parentElement; node; node = node.parentElement) {
      const [r, g, b, alpha = 1] = channels(getComputedStyle(node).backgroundColor);
      if (alpha > 0) {
        behind = [r, g, b];
        break;
      }
    }
    const luminance = ([r, g, b]: number[]) =>
      [r, g, b].map((c) => (c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4)).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    const [light, dark] = [luminance(channels(style.outlineColor)), luminance(behind)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    return { name, matches, problem: ratio < 3 ? `outline ${style.outlineColor} on rgb(${behind.join(", ")}): contrast ${ratio.toFixed(2)}` : null };
  }, selector);
}

/** Presses Tab (or `key`) until the focused element matches `selector`, noting every stop on the way. */
async function tabTo(page: Page, selector: string, stops: Stop[], limit = 60, key = "Tab"): Promise<void> {
  const start = stops.length;
  for (let pressed = 0; pressed < limit; pressed++) {
    await page.keyboard.press(key);
    const stop = await focusStop(page, selector);
    stops.push(stop);
    if (stop.matches) return;
  }
  throw new Error(`Tab never reached ${selector}; it went through:\n${stops.slice(start).map((stop) => stop.name).join("\n")}`);
}

/** Tabs round the whole page, from its first stop back to it, and returns the stops whose focus does not show. */
async function unseenFocus(page: Page, where: string): Promise<string[]> {
  await page.locator("a.skip-link").focus(); // the first stop (the keyboard test shows that Tab finds it there)
  const stops: Stop[] = [];
  await tabTo(page, "a.skip-link", stops, 200);
  // The browser's own stop between the page's last element and its first: the document, nothing to outline.
  return stops.filter((stop) => stop.problem && !stop.name.startsWith("body ")).map((stop) => `${where}: ${stop.name}: ${stop.problem}`);
}

const focusedMatches = (page: Page, selector: string) => page.evaluate((selector) => document.activeElement?.matches(selector) ?? false, selector);

for (const colorScheme of THEMES) {
  suite.test(`signs in, opens a conversation and sends a message with the keyboard alone, every stop outlined (${colorScheme} theme)`, async ({ open }) => {
    const id = await createConversation(suite.app, alice, `Typed without a mouse (${colorScheme})`);
    await addMessage(suite.app, alice.token, id, "Written before");
    const tab = await open({ colorScheme });
    const { page } = tab;
    const stops: Stop[] = [];
    await tab.goto();

    // The sign-in form puts focus in its field.
    await page.getByLabel("API key or JWT").waitFor();
    expect(await focusedMatches(page, "input#token")).toBe(true);
    await page.keyboard.type(alice.token);
    await page.keyboard.press("Enter");
    await page.getByTestId("viewer-name").waitFor();
    await page.locator('[data-testid="conversation-list"][aria-busy="false"]').waitFor({ state: "attached" }); // Tab finds what is drawn

    // The first stop is the skip link, shown when focused. Past it come the top bar's links and buttons, then
    // the page; back to the skip link, whose Enter takes focus past the top bar at once.
    await tabTo(page, "a.skip-link", stops, 1);
    const link = await page.locator("a.skip-link").boundingBox();
    expect(link && link.y >= 0 && link.height > 0).toBe(true);
    await tabTo(page, "main *", stops, 10);
    expect(stops.map((stop) => stop.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^a "Usage"/), expect.stringMatching(/^button "Sign out"/)]));
    await tabTo(page, "a.skip-link", stops, 10, "Shift+Tab");
    await page.keyboard.press("Enter");
    expect(await focusedMatches(page, "main#main")).toBe(true);

    // The next stop is in the page's content, past the top bar; the conversation opens with Enter.
    await tabTo(page, "main *", stops, 1);
    await tabTo(page, `[data-conversation-id="${id}"]`, stops);
    await page.keyboard.press("Enter");
    await page.locator(`[data-testid="chat"][data-conversation-id="${id}"]`).waitFor();
    await page.locator('[data-testid="messages"] [data-seq="1"]').waitFor();

    // Rename opens a form with focus in it; Escape closes it and gives focus back to Rename.
    await tabTo(page, ".chat-actions .row > button:first-child", stops);
    await page.keyboard.press("Enter");
    await page.getByLabel("Title").waitFor();
    expect(await focusedMatches(page, ".chat-actions input")).toBe(true);
    await page.keyboard.press("Escape");
    await page.getByLabel("Title").waitFor({ state: "detached" });
    expect(await focusedMatches(page, ".chat-actions .row > button:first-child")).toBe(true);
    // Export opens its panel below; Escape from inside it closes it and focus returns to Export.
    await tabTo(page, ".chat-actions .row > button:last-child", stops);
    await page.keyboard.press("Enter");
    await page.getByTestId("export-panel").waitFor();
    await tabTo(page, '[data-testid="export-panel"] select', stops, 1);
    await page.keyboard.press("Escape");
    await page.getByTestId("export-panel").waitFor({ state: "detached" });
    expect(await focusedMatches(page, ".chat-actions .row > button:last-child")).toBe(true);

    // The composer: Shift+Enter is a new line, Enter sends.
    await tabTo(page, "#composer-text", stops);
    await page.keyboard.type("Sent with the keyboard");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("on two lines");
    await page.keyboard.press("Enter");
    const sent = page.locator('[data-testid="messages"] [data-seq="2"]');
    await sent.waitFor();
    await expect(sent.getAttribute("data-role")).resolves.toBe("USER");
    const stored = await suite.app.ok<{ conversation: { messages: { edges: { node: { content: string } }[] } } }>(
      `query($id: UUID!) { conversation(id: $id) { messages(last: 1) { edges { node { content } } } } }`,
      { id },
      alice.token,
    );
    expect(stored.conversation.messages.edges[0].node.content).toBe("Sent with the keyboard\non two lines");

    expect(stops.filter((stop) => stop.problem).map((stop) => `${stop.name}: ${stop.problem}`)).toEqual([]);
  });
}

// --- axe-core ---------------------------------------------------------------------------------------------

/**
 * Runs axe-core on the page as it is; returns its serious and critical violations, one readable block each.
 * axe comes in through addInitScript (openWithAxe, below), which the DevTools protocol runs in every document
 * before the page's own scripts: the page's Content-Security-Policy (script-src 'self') governs the page's
 * scripts, not the browser's, so the console is checked under its real policy, with no bypassCSP.
 */
async function serious(page: Page, where: string): Promise<string[]> {
  const violations = await page.evaluate(async () => {
    const { axe } = window as unknown as { axe: typeof import("axe-core") };
    const results = await axe.run(document, { resultTypes: ["violations"] });
    return results.violations.map((rule) => ({
      id: rule.id,
      impact: rule.impact,
      help: rule.help,
      nodes: rule.nodes.map((node) => `${node.target.join(" ")}\n      ${node.html.slice(0, 200)}\n      ${(node.failureSummary ?? "").replace(/\n/g, "\n      ")}`),
    }));
  });
  return violations
    .filter((rule) => rule.impact === "serious" || rule.impact === "critical")
    .map((rule) => `${where}: ${rule.id} (${rule.impact}): ${rule.help}\n    ${rule.nodes.join("\n    ")}`);
}

async function openWithAxe(open: ConsoleTestContext["open"], width: number, colorScheme: "light" | "dark"): Promise<ConsolePage> {
  const tab = await open({ width, height: width < 760 ? 740 : 900, colorScheme });
  await tab.page.addInitScript({ path: AXE });
  return tab;
}

/** Each admin section, and what shows that it has drawn its data. */
const ADMIN_SECTIONS: [string, string][] = [
  ["users", '[data-testid="users-table"] tbody tr'],
  ["keys", '[data-testid="keys-table"] tbody tr'],
  ["grants", '[data-testid="grants-table"] tbody tr'],
  ["config", '[data-testid="config-editor-retention"]'],
  ["guilds", '[data-testid="config-editor-Guild 123456789012345678"]'],
  ["audit", '[data-testid="audit-table"] tbody tr'],
];

for (const colorScheme of THEMES) {
  for (const width of [375, 1440]) {
    suite.test(`axe finds nothing serious, and every focus shows, on any page at ${width} px (${colorScheme} theme)`, async ({ open }) => {
      const tab = await openWithAxe(open, width, colorScheme);
      const { page } = tab;
      const found: string[] = [];

      await tab.goto();
      await page.getByLabel("API key or JWT").waitFor();
      await page.waitForFunction(() => "axe" in window); // axe is there: a failure below is the page's, not the injection's
      found.push(...(await serious(page, "sign-in")));
      // With a refusal shown too.
      tab.expectConsoleError(/status of 401/);
      await page.getByLabel("API key or JWT").fill("pk_not-a-real-key");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByTestId("signin-error").waitFor();
      found.push(...(await serious(page, "sign-in, refused")));

      await tab.signIn(admin.token);
      await page.locator(`[data-testid="conversation-list"] [data-conversation-id="${chatId}"]`).waitFor();
      found.push(...(await serious(page, "conversations")), ...(await unseenFocus(page, "conversations")));

      await tab.goto(`/console/conversations/${chatId}`);
      const reply = page.locator('[data-testid="messages"] [data-seq="2"]');
      await reply.locator(".hljs-keyword").first().waitFor();
      await reply.locator("details.tool-calls summary").click();
      await reply.getByRole("button", { name: "Details" }).click();
      await reply.getByTestId("message-details").waitFor();
      await page.getByRole("button", { name: "Export" }).first().click();
      await page.getByTestId("export-panel").waitFor();
      found.push(...(await serious(page, "chat")), ...(await unseenFocus(page, "chat")));

      await tab.goto("/console/usage");
      await page.getByTestId("usage-table").waitFor();
      await page.locator('[data-testid="chart-cost-per-day-by-model"] canvas').waitFor();
      await page.getByTestId("budget-gauge").nth(1).waitFor();
      await page.locator('[data-testid="alerts"] [data-alert-id]').nth(3).waitFor();
      found.push(...(await serious(page, "usage")), ...(await unseenFocus(page, "usage")));

      for (const [section, drawn] of ADMIN_SECTIONS) {
        await tab.goto(`/console/admin/${section}`);
        if (section === "guilds") {
          await page.getByLabel("Discord guild id").fill("123456789012345678");
          await page.getByRole("button", { name: "Open" }).click();
        }
        await page.locator(drawn).first().waitFor();
        found.push(...(await serious(page, `admin ${section}`)), ...(await unseenFocus(page, `admin ${section}`)));
      }

      if (found.length) throw new Error(`${found.length} problems, serious or critical by axe-core or a focus that does not show:\n\n${found.join("\n\n")}`);
    });
  }
}
