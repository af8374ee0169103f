/**
 * Parley Console in Chromium, against a real server: signing in and out, the conversation list and the chat
 * kept live by subscriptions (a message from another client, a streamed reply chunk by chunk), paging up
 * through history, hostile Markdown, isolation between members, a revoked key, and the layout at 375 and
 * 1440 px. Every test fails on any console error or uncaught exception of the page, and on any request that
 * would leave the test server (test/helpers/browser.ts).
 */
import { SignJWT } from "jose";
import type { Page } from "playwright-core";
import { Role } from "../../src/modules/user/role.enum";
import { addMessage as addMessageAs, consoleSuite, createConversation as createConversationAs, screenshot, type ConsolePage } from "../helpers/browser";
import type { TestUser } from "../helpers/server";

/** JWTs from a pretend identity provider, besides API keys. */
const JWT_SECRET = "console-browser-tests-jwt-secret-0123456789";
const suite = consoleSuite({ JWT_SECRET, JWT_ISSUER: "https://idp.test", JWT_AUDIENCE: "parley" });

let admin: TestUser;
let alice: TestUser;
let bob: TestUser;
let worker: TestUser;

beforeAll(async () => {
  admin = await suite.app.makeUser(Role.ADMIN, "Ada Admin");
  alice = await suite.app.makeUser(Role.MEMBER, "Alice Liddell");
  bob = await suite.app.makeUser(Role.MEMBER, "Bob Builder");
  worker = await suite.app.makeUser(Role.SERVICE, "gpt-worker");
});

const createConversation = (owner: TestUser, title: string) => createConversationAs(suite.app, owner, title);
const addMessage = (token: string, conversationId: string, content: string, input?: Record<string, unknown>) => addMessageAs(suite.app, token, conversationId, content, input);

/** A conversation of Alice's that the worker may answer in. */
async function aliceConversation(title: string): Promise<string> {
  const id = await createConversation(alice, title);
  await suite.app.grant(worker, { conversationId: id });
  return id;
}

const messages = (page: Page) => page.locator('[data-testid="messages"] [data-seq]');
const message = (page: Page, seq: number) => page.locator(`[data-testid="messages"] [data-seq="${seq}"]`);
const listItem = (page: Page, id: string) => page.locator(`[data-testid="conversation-list"] [data-conversation-id="${id}"]`);

/** Whether the message is (at least partly) inside the scrolled message list's visible area. */
async function inView(page: Page, seq: number): Promise<boolean> {
  return message(page, seq).evaluate((node) => {
    const box = node.closest('[data-testid="messages"]')!.getBoundingClientRect();
    const own = node.getBoundingClientRect();
    return own.bottom > box.top && own.top < box.bottom;
  });
}

/** The seqs drawn, in document order. */
async function drawnSeqs(page: Page): Promise<number[]> {
  return messages(page).evaluateAll((nodes) => nodes.map((node) => Number(node.getAttribute("data-seq"))));
}

async function openChat(tab: ConsolePage, id: string): Promise<void> {
  await tab.goto(`/console/conversations/${id}`);
  await tab.page.getByTestId("chat").waitFor();
}

suite.test("signs in with an API key, shows who is signed in, keeps the tab signed in, and signs out", async ({ open }) => {
  const tab = await open();
  await tab.goto();
  await tab.signIn(` Bearer ${alice.token} `); // pasted with its scheme and spaces: still the key
  const { page } = tab;
  await expect(page.getByTestId("viewer-name").textContent()).resolves.toBe("Alice Liddell");
  await expect(page.getByTestId("viewer-role").textContent()).resolves.toBe("member");
  expect(page.url()).toMatch(/\/console\/conversations$/);
  expect(await page.evaluate(() => sessionStorage.getItem("parley.console.token"))).toBe(alice.token);
  // The key goes as a bearer token, and the viewer query says who it is.
  expect(tab.operations.map((operation) => operation.operationName)).toContain("ConsoleViewer");

  await page.reload();
  await page.getByTestId("viewer-name").waitFor();

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API key or JWT").waitFor();
  expect(await page.evaluate(() => sessionStorage.getItem("parley.console.token"))).toBeNull();
});

suite.test("signs in with a JWT from the identity provider", async ({ open }) => {
  const jwt = await new SignJWT({ name: "Jo from the IdP" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(`idp|console-${process.pid}`)
    .setIssuer("https://idp.test")
    .setAudience("parley")
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(JWT_SECRET));
  const tab = await open();
  await tab.signIn(jwt);
  const { page } = tab;
  await expect(page.getByTestId("viewer-name").textContent()).resolves.toBe("Jo from the IdP");
  await expect(page.getByTestId("viewer-role").textContent()).resolves.toBe("member");
  // The websocket takes the same token: the list's live updates connect.
  await page.getByTestId("live-status").and(page.locator('[data-status="connected"]')).waitFor();
  await page.getByRole("button", { name: "New" }).click();
  await page.getByTestId("chat").waitFor();
  await expect(page.getByTestId("chat-title").textContent()).resolves.toBe("Untitled conversation");
});

suite.test("refuses a key Parley does not accept, with a message", async ({ open }) => {
  const tab = await open();
  tab.expectConsoleError(/status of 401/); // the browser logs the refused request itself
  await tab.goto();
  await tab.page.getByLabel("API key or JWT").fill("pk_not-a-real-key");
  await tab.page.getByRole("button", { name: "Sign in" }).click();
  await expect(tab.page.getByTestId("signin-error").textContent()).resolves.toContain("does not accept this key");
  expect(await tab.page.evaluate(() => sessionStorage.getItem("parley.console.token"))).toBeNull();
});

suite.test("lists the viewer's conversations with filters, live, and opens one", async ({ open }) => {
  const first = await createConversation(alice, "Garden plans");
  const second = await createConversation(alice, "Tax questions");
  await addMessage(alice.token, second, "What can I deduct?");
  const archived = await createConversation(alice, "Old trip");
  await suite.app.ok(`mutation($id: UUID!) { archiveConversation(id: $id) { id } }`, { id: archived }, alice.token);

  const tab = await open();
  await tab.signIn(alice.token);
  const { page } = tab;
  await listItem(page, second).waitFor();
  await expect(listItem(page, first).isVisible()).resolves.toBe(true);
  await expect(listItem(page, second).textContent()).resolves.toContain("What can I deduct?");

  await page.getByLabel("Status").selectOption("ARCHIVED");
  await listItem(page, archived).waitFor();
  await listItem(page, first).waitFor({ state: "detached" });
  await page.getByLabel("Status").selectOption("ACTIVE");
  await listItem(page, first).waitFor();
  await expect(listItem(page, archived).count()).resolves.toBe(0);

  // Created by another client: the list learns of it from conversationsChanged.
  const fresh = await createConversation(alice, "Made elsewhere");
  await listItem(page, fresh).waitFor();
  // A new message moves a conversation to the top.
  await addMessage(alice.token, first, "Tomatoes or peppers?");
  await page.waitForFunction(
    (id) => document.querySelector('[data-testid="conversation-list"] li:first-child [data-conversation-id]')?.getAttribute("data-conversation-id") === id,
    first,
  );

  await listItem(page, second).click();
  await expect(page.getByTestId("chat-title").textContent()).resolves.toBe("Tax questions");
  expect(page.url()).toContain(`/console/conversations/${second}`);
  await expect(message(page, 1).textContent()).resolves.toContain("What can I deduct?");
});

suite.test("pages the list with Load more, and finds messages by their words", async ({ open }) => {
  const dave = await suite.app.makeUser(Role.MEMBER, "Dave");
  const ids: string[] = [];
  for (let i = 1; i <= 33; i++) ids.push(await createConversation(dave, `Topic ${i}`));
  await addMessage(dave.token, ids[0], "The octopus has three hearts & blue blood <really>");
  const tab = await open();
  await tab.signIn(dave.token);
  const { page } = tab;
  const items = page.locator('[data-testid="conversation-list"] [data-conversation-id]');
  await listItem(page, ids[0]).waitFor();
  await expect(items.count()).resolves.toBe(30);
  await page.getByRole("button", { name: "Load more (30 of 33)" }).click();
  await listItem(page, ids[1]).waitFor();
  const shown = await items.evaluateAll((nodes) => nodes.map((node) => node.getAttribute("data-conversation-id")));
  expect(shown).toHaveLength(33);
  expect(new Set(shown)).toEqual(new Set(ids));
  await expect(page.getByRole("button", { name: /Load more/ }).count()).resolves.toBe(0);

  await page.getByLabel("Search messages").fill("octopus");
  const hit = page.getByTestId("search-results").getByRole("link");
  await hit.waitFor();
  await expect(hit.locator("mark").textContent()).resolves.toBe("octopus");
  // The highlight's escaped text is shown as text, its <b> markers as <mark>.
  await expect(hit.textContent()).resolves.toContain("& blue blood <really");
  await hit.click();
  await expect(page.getByTestId("chat-title").textContent()).resolves.toBe("Topic 1");
});

suite.test("shows a message another client adds without a reload, and sends one as the member", async ({ open }) => {
  const id = await aliceConversation("Live chat");
  await addMessage(alice.token, id, "Hello from before");
  const tab = await open();
  await tab.signIn(alice.token);
  await openChat(tab, id);
  const { page } = tab;
  await message(page, 1).waitFor();
  await page.getByTestId("live-status").and(page.locator('[data-status="connected"]')).waitFor();
  const loads = tab.requests.length;

  await addMessage(alice.token, id, "Written from another client");
  await message(page, 2).waitFor();
  await expect(message(page, 2).textContent()).resolves.toContain("Written from another client");
  await addMessage(worker.token, id, "And an **assistant** answer", { role: "ASSISTANT", model: "gpt-test" });
  await expect(message(page, 3).locator("strong").textContent()).resolves.toBe("assistant");
  // Pushed over the websocket: no page load, no polling.
  expect(tab.requests.slice(loads).filter((url) => !url.endsWith("/graphql"))).toEqual([]);

  await page.getByLabel("Message", { exact: true }).fill("Sent from the console");
  await page.getByLabel("Message", { exact: true }).press("Enter");
  await message(page, 4).waitFor();
  await expect(message(page, 4).getAttribute("data-role")).resolves.toBe("USER");
  await expect(page.getByLabel("Message", { exact: true }).inputValue()).resolves.toBe("");
  // The mutation's answer and the subscription's event are one message, drawn once. The stream delivers in seq
  // order, so once a later message is drawn, the event of the 4th has come too.
  await addMessage(alice.token, id, "A later line");
  await message(page, 5).waitFor();
  expect(await drawnSeqs(page)).toEqual([1, 2, 3, 4, 5]);
  const stored = await suite.app.ok<{ conversation: { messages: { edges: { node: { content: string; role: string } }[] } } }>(
    `query($id: UUID!) { conversation(id: $id) { messages(last: 10) { edges { node { content role } } } } }`,
    { id },
    alice.token,
  );
  expect(stored.conversation.messages.edges.at(-2)!.node).toEqual({ content: "Sent from the console", role: "USER" });

  // Details are read when asked for.
  expect(tab.operations.some((operation) => operation.operationName === "ConsoleMessageDetails")).toBe(false);
  await message(page, 3).getByRole("button", { name: "Details" }).click();
  await expect(message(page, 3).getByTestId("message-details").textContent()).resolves.toContain("gpt-test");
  expect(tab.operations.filter((operation) => operation.operationName === "ConsoleMessageDetails")).toHaveLength(1);
});

suite.test("a streamed reply grows chunk by chunk, then completes", async ({ open }) => {
  const id = await aliceConversation("Streaming");
  await addMessage(alice.token, id, "Tell me a story");
  const tab = await open();
  await tab.signIn(alice.token);
  await openChat(tab, id);
  const { page } = tab;
  await message(page, 1).waitFor();
  await page.getByTestId("live-status").and(page.locator('[data-status="connected"]')).waitFor();

  const started = await suite.app.ok<{ startMessage: { id: string; seq: number } }>(
    `mutation($input: StartMessageInput!) { startMessage(input: $input) { id seq } }`,
    { input: { conversationId: id, requestId: "story-1", model: "gpt-test" } },
    worker.token,
  );
  const reply = message(page, started.startMessage.seq);
  await reply.waitFor();
  await expect(reply.getAttribute("data-status")).resolves.toBe("STREAMING");

  const chunks = ["Once upon ", "a time, ", "there was a **brave** ", "little parser."];
  let text = "";
  for (const [index, chunk] of chunks.entries()) {
    await suite.app.ok(`mutation($id: UUID!, $index: Int!, $text: String!) { appendMessageChunk(messageId: $id, index: $index, text: $text) { index } }`, { id: started.startMessage.id, index, text: chunk }, worker.token);
    text += chunk;
    const shown = text.replace(/\*\*/g, "").trim();
    // Each chunk shows before the next is sent: the reply grows in place.
    await page.waitForFunction(([seq, expected]) => document.querySelector(`[data-seq="${seq}"] .md`)?.textContent?.trim() === expected, [started.startMessage.seq, shown] as const);
    await expect(reply.getAttribute("data-status")).resolves.toBe("STREAMING");
  }
  await expect(reply.locator("strong").textContent()).resolves.toBe("brave");

  await suite.app.ok(`mutation($id: UUID!) { completeMessage(messageId: $id, usage: { promptTokens: 5, completionTokens: 9 }) { id } }`, { id: started.startMessage.id }, worker.token);
  await page.waitForFunction((seq) => document.querySelector(`[data-seq="${seq}"]`)?.getAttribute("data-status") === "COMPLETE", started.startMessage.seq);
  expect((await reply.locator(".md").textContent())?.trim()).toBe("Once upon a time, there was a brave little parser.");
  await expect(reply.getByText("writing…").count()).resolves.toBe(0);
  expect(await drawnSeqs(page)).toEqual([1, 2]);
});

suite.test("joins a reply that is already streaming, and draws it whole", async ({ open }) => {
  const id = await aliceConversation("Late reader");
  const started = await suite.app.ok<{ startMessage: { id: string; seq: number } }>(
    `mutation($input: StartMessageInput!) { startMessage(input: $input) { id seq } }`,
    { input: { conversationId: id, requestId: "late-1" } },
    worker.token,
  );
  const append = (index: number, text: string) =>
    suite.app.ok(`mutation($id: UUID!, $index: Int!, $text: String!) { appendMessageChunk(messageId: $id, index: $index, text: $text) { index } }`, { id: started.startMessage.id, index, text }, worker.token);
  await append(0, "Already ");
  await append(1, "here, ");
  const tab = await open();
  await tab.signIn(alice.token);
  await openChat(tab, id);
  const { page } = tab;
  await page.waitForFunction(() => document.querySelector('[data-seq="1"] .md')?.textContent?.trim() === "Already here,");
  await page.getByTestId("live-status").and(page.locator('[data-status="connected"]')).waitFor();
  await append(2, "and more.");
  await page.waitForFunction(() => document.querySelector('[data-seq="1"] .md')?.textContent?.trim() === "Already here, and more.");
  await suite.app.ok(`mutation($id: UUID!) { completeMessage(messageId: $id) { id } }`, { id: started.startMessage.id }, worker.token);
  await page.waitForFunction(() => document.querySelector('[data-seq="1"]')?.getAttribute("data-status") === "COMPLETE");
  expect((await message(page, 1).locator(".md").textContent())?.trim()).toBe("Already here, and more.");
});

suite.test("scrolling up loads older pages, each page and each message exactly once", async ({ open }) => {
  const id = await aliceConversation("Long history");
  const total = 95; // pages of 40: 56–95 first, then 16–55, then 1–15
  for (let seq = 1; seq <= total; seq++) await addMessage(alice.token, id, `Message number ${seq}`);

  const tab = await open({ width: 1440, height: 900 });
  await tab.signIn(alice.token);
  await openChat(tab, id);
  const { page } = tab;
  await message(page, total).waitFor();
  expect(await drawnSeqs(page)).toEqual(Array.from({ length: 40 }, (_, i) => 56 + i));
  // The newest message is in view, at the bottom.
  expect(await inView(page, total)).toBe(true);
  expect(await inView(page, 56)).toBe(false);

  const scrollToTop = () => page.getByTestId("messages").evaluate((box) => box.scrollTo({ top: 0 }));
  await scrollToTop();
  await message(page, 16).waitFor();
  // The reader stays where they were: the message that was at the top is still in view.
  expect(await inView(page, 56)).toBe(true);
  expect(await inView(page, 16)).toBe(false);
  await scrollToTop();
  await message(page, 1).waitFor();
  await expect(page.getByTestId("history-edge").textContent()).resolves.toBe("Start of the conversation");
  // Scrolling about at the top asks for nothing more.
  for (let i = 0; i < 3; i++) {
    await page.getByTestId("messages").evaluate((box) => box.scrollTo({ top: 50 }));
    await scrollToTop();
  }
  await page.waitForTimeout(300);

  expect(await drawnSeqs(page)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  const older = tab.operations.filter((operation) => operation.operationName === "ConsoleOlderMessages");
  expect(older).toHaveLength(2);
  expect(new Set(older.map((operation) => operation.variables.before)).size).toBe(2);
});

suite.test("hostile Markdown is drawn as text: no script runs, no remote image loads", async ({ open }) => {
  const id = await aliceConversation("Hostile");
  const hostile = [
    "<script>window.__pwned = 'script'</script>",
    '<img src="http://remote.example/a.png" onerror="window.__pwned = \'img\'">',
    "[click me](javascript:window.__pwned='link')",
    "[data link](data:text/html,<script>window.__pwned='data'</script>)",
    "<a href=\"javascript:window.__pwned='raw-a'\">raw anchor</a>",
    "![tracker](http://remote.example/pixel.png)",
    "<iframe src=\"http://remote.example/\"></iframe>",
    "<svg onload=\"window.__pwned='svg'\"></svg>",
    "<style>body { display: none }</style>",
    "[safe](https://example.org/docs) and <https://example.org/auto> and mail@example.org",
    "",
    "```js",
    "const answer = 42; // highlighted",
    "```",
  ].join("\n");
  await addMessage(worker.token, id, hostile, { role: "ASSISTANT" });
  await addMessage(alice.token, id, "<img src=x onerror=\"window.__pwned='user'\"> <b>not bold</b>");

  const tab = await open();
  await tab.page.addInitScript(() => {
    (window as unknown as { __pwned?: string }).__pwned = undefined;
  });
  await tab.signIn(alice.token);
  await openChat(tab, id);
  const { page } = tab;
  await message(page, 2).waitFor();
  const body = message(page, 1).locator(".md");

  // The markup is there as text.
  await expect(body.textContent()).resolves.toContain("<script>window.__pwned = 'script'</script>");
  await expect(body.textContent()).resolves.toContain("<iframe src=");
  await expect(message(page, 2).locator(".md").textContent()).resolves.toContain("<b>not bold</b>");
  // ... and none of it became an element.
  const found = await page.getByTestId("messages").evaluate((box) => ({
    elements: box.querySelectorAll("script, img, iframe, svg, style, object, embed, form, input, base, meta, link").length,
    handlers: [...box.querySelectorAll("*")].flatMap((node) => [...node.attributes].map((attribute) => attribute.name)).filter((name) => name.startsWith("on")),
    styles: box.querySelectorAll("[style]").length,
    hrefs: [...box.querySelectorAll("a[href]")].map((anchor) => anchor.getAttribute("href")),
  }));
  expect({ ...found, hrefs: undefined }).toEqual({ elements: 0, handlers: [], styles: 0, hrefs: undefined });
  // Links only to the web and to mail (linkify also turns the URLs inside the escaped tags into links).
  expect(found.hrefs.filter((href) => !/^(?:https?:\/\/|mailto:)/.test(href ?? ""))).toEqual([]);
  expect(found.hrefs).toEqual(expect.arrayContaining(["https://example.org/docs", "https://example.org/auto", "mailto:mail@example.org", "http://remote.example/pixel.png"]));
  // The image became a link to it (opened only if clicked), and the javascript: link stayed text.
  await expect(body.locator("a.md-image").textContent()).resolves.toBe("[image: tracker]");
  await expect(body.locator("a.md-image").getAttribute("rel")).resolves.toContain("noreferrer");
  await body.getByText("click me").first().click();
  await body.locator(".hljs-keyword").first().waitFor();

  await page.waitForTimeout(300);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
  expect(tab.requests.filter((url) => !url.startsWith(suite.app.url))).toEqual([]);
  expect(tab.offsite).toEqual([]);
  await expect(page.evaluate(() => getComputedStyle(document.body).display)).resolves.toBe("block");
});

suite.test("a member cannot see another member's conversation through the page", async ({ open }) => {
  const secret = await createConversation(alice, "Alice's secret plans");
  await addMessage(alice.token, secret, "Nobody else may read this");
  const mine = await createConversation(bob, "Bob's own");

  const tab = await open();
  await tab.signIn(bob.token);
  const { page } = tab;
  await listItem(page, mine).waitFor();
  await expect(page.getByTestId("conversation-list").textContent()).resolves.not.toContain("secret");
  await expect(listItem(page, secret).count()).resolves.toBe(0);

  await tab.goto(`/console/conversations/${secret}`);
  await page.getByTestId("chat-not-found").waitFor();
  await expect(page.getByText("Nobody else may read this").count()).resolves.toBe(0);
  await expect(page.getByTestId("chat-not-found").textContent()).resolves.toContain("Conversation not found");

  // A change to Alice's conversation reaches only Alice. Bob's own change, made after it, comes after it on the
  // same stream: once his list shows his, hers would have been there if it had been sent to him.
  await addMessage(alice.token, secret, "Another private line");
  await addMessage(bob.token, mine, "Bob's later line");
  await listItem(page, mine).filter({ hasText: "Bob's later line" }).waitFor();
  await expect(listItem(page, secret).count()).resolves.toBe(0);
  await expect(page.getByTestId("conversation-list").textContent()).resolves.not.toContain("private line");
});

suite.test("revoking the key signs the page out with a message", async ({ open }) => {
  const carol = await suite.app.makeUser(Role.MEMBER, "Carol");
  await createConversation(carol, "Carol's notes");
  const keys = await suite.app.ok<{ apiKeys: { id: string }[] }>(`query { apiKeys { id } }`, {}, carol.token);

  const tab = await open();
  await tab.signIn(carol.token);
  const { page } = tab;
  await page.getByTestId("live-status").and(page.locator('[data-status="connected"]')).waitFor();

  await suite.app.ok(`mutation($id: UUID!) { revokeApiKey(id: $id) { revokedAt } }`, { id: keys.apiKeys[0].id }, admin.token);
  await page.getByTestId("signin-notice").waitFor();
  await expect(page.getByTestId("signin-notice").textContent()).resolves.toMatch(/signed out: this key or token is no longer valid/i);
  expect(await page.evaluate(() => sessionStorage.getItem("parley.console.token"))).toBeNull();
  await expect(page.getByTestId("viewer-name").count()).resolves.toBe(0);
});

for (const viewport of [
  { width: 375, height: 740, colorScheme: "dark" as const },
  { width: 1440, height: 900, colorScheme: "light" as const },
]) {
  suite.test(`fits ${viewport.width} px without sideways scrolling (${viewport.colorScheme} theme)`, async ({ open }) => {
    const id = await aliceConversation(`A rather long conversation title that must not push the page wider than ${viewport.width} px`);
    await addMessage(alice.token, id, `A long word: ${"supercalifragilistic".repeat(8)} and a long link https://example.org/${"a".repeat(150)}`);
    await addMessage(worker.token, id, ["```json", JSON.stringify({ wide: "x".repeat(300) }), "```", "", "| a | b | c | d | e | f |", "|---|---|---|---|---|---|", `| ${"wide cell ".repeat(6)} | 2 | 3 | 4 | 5 | 6 |`].join("\n"), {
      role: "ASSISTANT",
      toolCalls: [{ id: "call-1", type: "function", function: { name: "search_docs", arguments: JSON.stringify({ query: "y".repeat(200) }) } }],
    });
    const tab = await open(viewport);
    await tab.signIn(alice.token);
    const { page } = tab;
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await listItem(page, id).waitFor();
    expect(await overflow()).toBe(0);

    await listItem(page, id).click();
    await message(page, 2).waitFor();
    // Tool calls are folded until opened.
    const toolCalls = message(page, 2).locator("details.tool-calls");
    await expect(toolCalls.locator("summary").textContent()).resolves.toBe("Tool call: search_docs");
    await expect(toolCalls.evaluate((node) => (node as HTMLDetailsElement).open)).resolves.toBe(false);
    await toolCalls.locator("summary").click();
    await message(page, 2).getByRole("button", { name: "Details" }).click();
    await message(page, 2).getByTestId("message-details").waitFor();
    expect(await overflow()).toBe(0);
    await screenshot(page, `chat-${viewport.width}-${viewport.colorScheme}`);

    const listShown = await page.getByRole("complementary", { name: "Your conversations" }).isVisible();
    if (viewport.width < 760) {
      // One pane at a time: the chat, with its way back to the list.
      expect(listShown).toBe(false);
      await page.getByRole("link", { name: "Back to conversations" }).click();
      await listItem(page, id).waitFor();
      expect(await overflow()).toBe(0);
    } else {
      expect(listShown).toBe(true);
      await expect(page.getByRole("link", { name: "Back to conversations" }).isVisible()).resolves.toBe(false);
    }
    await screenshot(page, `list-${viewport.width}-${viewport.colorScheme}`);
  });
}
