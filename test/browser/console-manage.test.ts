/**
 * Parley Console's second part in Chromium: chat actions (rename, archive, export a transcript fetched with
 * the bearer token), the usage page (charts and a summary table from seeded ledger rows, live alerts with
 * acknowledge), and the admin pages (API keys created and revoked, admins only, validated JSON settings),
 * at 375 and 1440 px. Like console.test.ts, any console error or offsite request fails a test.
 *
 * PARLEY_SCREENSHOTS=1 also writes docs/console-chat.png and docs/console-usage.png (the README's).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { Role } from "../../src/modules/user/role.enum";
import { addMessage as addMessageAs, consoleSuite, createConversation as createConversationAs, screenshot } from "../helpers/browser";
import { offscreenElements } from "./layout";
import type { TestUser } from "../helpers/server";

const suite = consoleSuite();
const DOCS = path.resolve(__dirname, "../../docs");
const DAY = 86_400_000;

let admin: TestUser;
let alice: TestUser;

beforeAll(async () => {
  admin = await suite.app.makeUser(Role.ADMIN, "Ada Admin");
  alice = await suite.app.makeUser(Role.MEMBER, "Alice Liddell");
});

const createConversation = (owner: TestUser, title: string) => createConversationAs(suite.app, owner, title);
const addMessage = (token: string, conversationId: string, content: string, input?: Record<string, unknown>) => addMessageAs(suite.app, token, conversationId, content, input);

const overflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

/** Ledger rows: per model, calls on each of the last days, some failed. Returns what the table must show. */
const SEEDED = [
  { model: "gpt-4o", calls: [2, 3, 4, 3, 5, 2, 3, 5, 2, 6, 4, 7, 5, 4], cost: 0.0125, prompt: 900, completion: 350, failEvery: 0 },
  { model: "claude-sonnet-4", calls: [1, 2, 1, 3, 2, 3, 2, 1, 4, 3, 5, 2, 6, 4], cost: 0.0215, prompt: 1200, completion: 500, failEvery: 7 },
  { model: "llama-3.1-8b", calls: [4, 5, 3, 6, 5, 4, 6, 8, 5, 9, 7, 10, 8, 6], cost: 0.0004, prompt: 400, completion: 120, failEvery: 5 },
];
let seeded: Promise<Map<string, { requests: number; errors: number; prompt: number; completion: number; cost: number }>> | undefined;

function seedUsage() {
  seeded ??= (async () => {
    const totals = new Map<string, { requests: number; errors: number; prompt: number; completion: number; cost: number }>();
    const today = Math.floor(Date.now() / DAY) * DAY;
    let n = 0;
    for (const row of SEEDED) {
      const total = { requests: 0, errors: 0, prompt: 0, completion: 0, cost: 0 };
      for (const [dayBack, calls] of row.calls.entries()) {
        for (let call = 0; call < calls; call++) {
          n++;
          const failed = row.failEvery > 0 && n % row.failEvery === 0;
          const occurredAt = new Date(Math.min(Date.now() - 1_000, today - (row.calls.length - 1 - dayBack) * DAY + (call + 1) * 600_000)).toISOString();
          await suite.app.ok(
            `mutation($input: RecordAiRequestInput!) { recordAiRequest(input: $input) { id } }`,
            {
              input: {
                requestId: `console-usage-${n}`,
                model: row.model,
                provider: "test",
                promptTokens: row.prompt,
                completionTokens: row.completion,
                costUsd: row.cost,
                status: failed ? "ERROR" : "SUCCESS",
                occurredAt,
                userId: alice.user.id,
              },
            },
            admin.token,
          );
          total.requests++;
          total.errors += failed ? 1 : 0;
          total.prompt += row.prompt;
          total.completion += row.completion;
          total.cost += row.cost;
        }
      }
      totals.set(row.model, total);
    }
    return totals;
  })();
  return seeded;
}

let wideRows: Promise<void> | undefined;

/** Rows as wide as admin tables get: a long service name and email, a grant to one conversation (its id), long audit details, a budget. */
function seedWideRows() {
  wideRows ??= (async () => {
    const service = await suite.app.makeUser(Role.SERVICE, "Nightly transcript archiver for the support team");
    await suite.app.database.db.knex("users").where({ id: service.user.id }).update({ email: "transcript-archiver.support-team@operations.example.org" });
    const conversationId = await createConversation(admin, "Granted to the archiver");
    await suite.app.ok(`mutation($input: GrantServiceInput!) { grantService(input: $input) { id } }`, { input: { serviceId: service.user.id, conversationId } }, admin.token);
    await suite.app.ok(`mutation($settings: JSON!) { setGuildConfig(guildId: "998877665544332211", settings: $settings) { guildId } }`, { settings: { systemPrompt: "You are a helpful assistant. ".repeat(8).trim() } }, admin.token);
    await suite.app.ok(`mutation { createApiKey(name: "Quarterly reporting export for the finance department") { id } }`, {}, admin.token);
    await setBudget({ userId: alice.user.id, limitUsd: 25, period: "MONTHLY" });
  })();
  return wideRows;
}

async function setBudget(input: Record<string, unknown>): Promise<string> {
  const data = await suite.app.ok<{ setBudget: { id: string } }>(`mutation($input: SetBudgetInput!) { setBudget(input: $input) { id } }`, { input }, admin.token);
  return data.setBudget.id;
}

suite.test("renames and archives a conversation from the chat, which then cannot be written in", async ({ open }) => {
  const id = await createConversation(alice, "Draft title");
  await addMessage(alice.token, id, "First line");
  const tab = await open();
  await tab.signIn(alice.token);
  const { page } = tab;
  page.on("dialog", (dialog) => void dialog.accept());
  await tab.goto(`/console/conversations/${id}`);
  await page.getByTestId("chat").waitFor();

  await page.getByRole("button", { name: "Rename" }).click();
  await page.getByLabel("Title").fill("Quarterly planning");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByTestId("chat-title").filter({ hasText: "Quarterly planning" }).waitFor();
  const stored = await suite.app.ok<{ conversation: { title: string; status: string } }>(`query($id: UUID!) { conversation(id: $id) { title status } }`, { id }, alice.token);
  expect(stored.conversation.title).toBe("Quarterly planning");

  await expect(page.locator("#composer-text").count()).resolves.toBe(1);
  await page.getByRole("button", { name: "Archive" }).click();
  await page.getByText("This conversation is archived: it can be read, not written.").waitFor();
  await expect(page.locator("#composer-text").count()).resolves.toBe(0);
  await expect(page.getByRole("button", { name: "Archive" }).count()).resolves.toBe(0);
  const archived = await suite.app.ok<{ conversation: { status: string } }>(`query($id: UUID!) { conversation(id: $id) { status } }`, { id }, alice.token);
  expect(archived.conversation.status).toBe("ARCHIVED");
});

suite.test("exports a transcript as CSV and JSON, fetched with the bearer token and offered as a download", async ({ open }) => {
  const id = await createConversation(alice, "Export me");
  await addMessage(alice.token, id, "Hello, transcript");
  await addMessage(alice.token, id, "A second line, with a comma");
  const tab = await open();
  await tab.signIn(alice.token);
  const { page } = tab;
  await tab.goto(`/console/conversations/${id}`);
  await page.getByTestId("chat").waitFor();
  await page.getByRole("button", { name: "Export" }).first().click();
  const panel = page.getByTestId("export-panel");
  await panel.getByRole("button", { name: "Export" }).click();
  const link = page.getByTestId("export-download");
  await link.waitFor();
  await expect(link.getAttribute("href")).resolves.toMatch(/^blob:/);
  await expect(link.getAttribute("download")).resolves.toBe(`conversation-${id}.csv`);
  // The page fetched the file itself, with the token (a link cannot send it).
  expect(tab.requests.some((url) => /\/transcripts\/[0-9a-f-]+\/download$/.test(new URL(url).pathname))).toBe(true);

  const download = page.waitForEvent("download");
  await link.click();
  const saved = await (await download).path();
  const csv = readFileSync(saved!, "utf8");
  expect(csv).toContain("Hello, transcript");
  expect(csv).toContain("A second line, with a comma");

  await panel.getByLabel("Format").selectOption("JSON");
  await panel.getByRole("button", { name: "Export" }).click();
  await page.locator(`[data-testid="export-download"][download="conversation-${id}.json"]`).waitFor();
  const jsonDownload = page.waitForEvent("download");
  await page.getByTestId("export-download").click();
  const json = JSON.parse(readFileSync((await (await jsonDownload).path())!, "utf8"));
  expect(JSON.stringify(json)).toContain("Hello, transcript");
});

suite.test("the usage page draws charts and a summary table equal to the seeded ledger", async ({ open }) => {
  const totals = await seedUsage();
  const tab = await open();
  await tab.signIn(admin.token);
  const { page } = tab;
  await page.getByRole("link", { name: "Usage" }).click();
  await page.getByTestId("usage-table").waitFor();
  for (const title of ["cost-per-day-by-model", "tokens-per-day", "error-rate-per-day"]) {
    await expect(page.locator(`[data-testid="chart-${title}"] canvas`).count()).resolves.toBe(1);
  }
  for (const [model, expected] of totals) {
    const row = page.locator(`[data-testid="usage-table"] tr[data-model="${model}"]`);
    const cell = (column: string) => row.locator(`[data-col="${column}"]`).textContent();
    await expect(cell("requests")).resolves.toBe(expected.requests.toLocaleString("en-US"));
    await expect(cell("errors")).resolves.toBe(expected.errors.toLocaleString("en-US"));
    await expect(cell("promptTokens")).resolves.toBe(expected.prompt.toLocaleString("en-US"));
    await expect(cell("completionTokens")).resolves.toBe(expected.completion.toLocaleString("en-US"));
    const cost = Number((await cell("costUsd"))!.replace("$", ""));
    expect(cost).toBeCloseTo(expected.cost, 4);
  }
  const calls = [...totals.values()].reduce((sum, row) => sum + row.requests, 0);
  await expect(page.getByTestId("total-requests").textContent()).resolves.toBe(calls.toLocaleString("en-US"));

  // A member sees the same page, of their own usage (the seeded rows are Alice's).
  const member = await open();
  await member.signIn(alice.token);
  await member.goto("/console/usage");
  await member.page.getByTestId("usage-table").waitFor();
  await expect(member.page.getByTestId("total-requests").textContent()).resolves.toBe(calls.toLocaleString("en-US"));
  await expect(member.page.getByTestId("alerts").count()).resolves.toBe(0);
});

suite.test("a live alert appears for an admin, who acknowledges it", async ({ open }) => {
  const tab = await open();
  await tab.signIn(admin.token);
  const { page } = tab;
  await tab.goto("/console/usage");
  await page.getByTestId("alerts").waitFor();
  await page.getByTestId("live-status").and(page.locator('[data-status="connected"]')).waitFor();
  const message = `Spend spike on gpt-4o (${Date.now()})`;
  const raised = await suite.app.ok<{ raiseAlert: { id: string } }>(
    `mutation($input: RaiseAlertInput!) { raiseAlert(input: $input) { id } }`,
    { input: { severity: "WARNING", source: "console-test", message } },
    admin.token,
  );
  const item = page.locator(`[data-alert-id="${raised.raiseAlert.id}"]`);
  await item.getByText(message).waitFor();
  await item.getByRole("button", { name: "Acknowledge" }).click();
  await item.getByTestId("acknowledged").waitFor();
  const stored = await suite.app.ok<{ alerts: { edges: { node: { id: string; acknowledgedAt: string | null } }[] } }>(
    `query { alerts(first: 50) { edges { node { id acknowledgedAt } } } }`,
    {},
    admin.token,
  );
  expect(stored.alerts.edges.find((edge) => edge.node.id === raised.raiseAlert.id)?.node.acknowledgedAt).toBeTruthy();
});

suite.test("an admin resolves an alert, which leaves the open list for good", async ({ open }) => {
  const raise = async (message: string) => {
    const data = await suite.app.ok<{ raiseAlert: { id: string } }>(
      `mutation($input: RaiseAlertInput!) { raiseAlert(input: $input) { id } }`,
      { input: { severity: "CRITICAL", source: "console-test", message } },
      admin.token,
    );
    return data.raiseAlert.id;
  };
  const message = `Budget watcher stalled (${Date.now()})`;
  const id = await raise(message);
  const other = await raise(`Another alert, left open (${Date.now()})`);
  const tab = await open();
  await tab.signIn(admin.token);
  const { page } = tab;
  await tab.goto("/console/usage");
  const item = page.locator(`[data-alert-id="${id}"]`);
  await item.getByText(message).waitFor();
  await item.getByRole("button", { name: "Resolve" }).click();
  await item.waitFor({ state: "detached" });
  const stored = await suite.app.ok<{ alerts: { edges: { node: { id: string; resolvedAt: string | null; acknowledgedAt: string | null } }[] } }>(
    `query { alerts(first: 100, filter: { resolved: true }) { edges { node { id resolvedAt acknowledgedAt } } } }`,
    {},
    admin.token,
  );
  const resolved = stored.alerts.edges.find((edge) => edge.node.id === id)?.node;
  expect(resolved?.resolvedAt).toBeTruthy();
  expect(resolved?.acknowledgedAt).toBeTruthy(); // resolving acknowledges too
  // The list asks for open alerts only: after a reload, with the list drawn again, it is still gone.
  await page.reload();
  await page.locator(`[data-alert-id="${other}"]`).waitFor();
  await expect(item.count()).resolves.toBe(0);
});

suite.test("an admin sees every budget as a gauge by user name or guild, a page at a time; a member sees their own", async ({ open }) => {
  const mallory = await suite.app.makeUser(Role.MEMBER, "Mallory Budgeted");
  const mine = await setBudget({ userId: mallory.user.id, limitUsd: 0.5, period: "WEEKLY", enforcement: "HARD" });
  // More than a page (24) of budgets: guilds'.
  const guilds = Array.from({ length: 25 }, (_, index) => `7000000000000000${String(index).padStart(2, "0")}`);
  const guildBudgets = new Map<string, string>();
  for (const guildId of guilds) guildBudgets.set(guildId, await setBudget({ guildId, limitUsd: 100, period: "MONTHLY" }));
  const { budgets } = await suite.app.ok<{ budgets: { totalCount: number } }>(`query { budgets(first: 1) { totalCount } }`, {}, admin.token);
  expect(budgets.totalCount).toBeGreaterThan(24);

  const tab = await open();
  await tab.signIn(admin.token);
  const { page } = tab;
  await tab.goto("/console/usage");
  const gauges = page.getByTestId("budget-gauge");
  await gauges.first().waitFor();
  await expect(gauges.count()).resolves.toBe(24);
  // Newest first: the guilds' budgets, the newest on top, then the rest a click away.
  await expect(gauges.first().getAttribute("data-budget-id")).resolves.toBe(guildBudgets.get(guilds.at(-1)!));
  await expect(gauges.first().locator(".budget-name").textContent()).resolves.toBe(`Guild ${guilds.at(-1)}`);
  await page.getByRole("button", { name: `More budgets (24 of ${budgets.totalCount})` }).click();
  await page.waitForFunction((total) => document.querySelectorAll('[data-testid="budget-gauge"]').length === total, budgets.totalCount);
  const ids = await gauges.evaluateAll((nodes) => nodes.map((node) => node.getAttribute("data-budget-id")));
  expect(new Set(ids).size).toBe(budgets.totalCount);
  await expect(page.getByRole("button", { name: /More budgets/ }).count()).resolves.toBe(0);
  const malloryGauge = page.locator(`[data-budget-id="${mine}"]`);
  await expect(malloryGauge.locator(".budget-name").textContent()).resolves.toBe("Mallory Budgeted");
  await expect(malloryGauge.getByRole("meter").getAttribute("aria-label")).resolves.toBe("Mallory Budgeted: 0% spent");

  // Mallory sees only her own, by the API's numbers.
  await suite.app.ok(
    `mutation($input: RecordAiRequestInput!) { recordAiRequest(input: $input) { id } }`,
    { input: { requestId: `budget-${Date.now()}`, model: "gpt-4o", provider: "test", promptTokens: 10, completionTokens: 10, costUsd: 0.2, status: "SUCCESS", userId: mallory.user.id } },
    admin.token,
  );
  const status = await suite.app.ok<{ budgetStatus: { percent: number } }>(`query { budgetStatus { percent } }`, {}, mallory.token);
  expect(status.budgetStatus.percent).toBeCloseTo(40, 5);
  const member = await open();
  await member.signIn(mallory.token);
  await member.goto("/console/usage");
  const own = member.page.getByTestId("budget-gauge");
  await own.waitFor();
  await expect(own.count()).resolves.toBe(1);
  await expect(own.getAttribute("data-budget-id")).resolves.toBe(mine);
  await expect(own.locator(".budget-name").textContent()).resolves.toBe("Your budget");
  await expect(own.getByRole("meter").getAttribute("aria-label")).resolves.toBe("Your budget: 40% spent");
  expect(member.operations.map((operation) => operation.operationName)).not.toContain("ConsoleBudgets");
});

suite.test("an admin creates an API key (shown once, copied) and revokes it, which signs its page out", async ({ open }) => {
  const tab = await open();
  await tab.page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
  await tab.signIn(admin.token);
  const { page } = tab;
  page.on("dialog", (dialog) => void dialog.accept());
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByTestId("keys-table").waitFor();
  await page.getByLabel("Name").fill("reporting bot");
  await page.getByLabel("Role").selectOption("MEMBER");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = (await page.getByTestId("new-key-secret").textContent())!;
  expect(secret.length).toBeGreaterThan(20);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByRole("button", { name: "Copied" }).waitFor();
  await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(secret);

  // The key works, as a member.
  const other = await open();
  await other.signIn(secret);
  await expect(other.page.getByTestId("viewer-role").textContent()).resolves.toBe("member");
  await other.page.getByTestId("live-status").and(other.page.locator('[data-status="connected"]')).waitFor();

  // Shown once: after Done, or on reload, only its prefix.
  await page.getByRole("button", { name: "Done" }).click();
  await page.reload();
  await page.getByTestId("keys-table").waitFor();
  await expect(page.getByText(secret).count()).resolves.toBe(0);
  const row = page.locator('[data-key-name="reporting bot"]');
  await row.getByRole("button", { name: "Revoke" }).click();
  await row.getByText("revoked").waitFor();

  await other.page.getByTestId("signin-notice").waitFor();
  await expect(other.page.getByTestId("viewer-name").count()).resolves.toBe(0);
});

suite.test("a member sees no Admin section, and the admin pages say admins only", async ({ open }) => {
  const tab = await open();
  await tab.signIn(alice.token);
  const { page } = tab;
  await expect(page.getByRole("link", { name: "Usage" }).count()).resolves.toBe(1);
  await expect(page.getByRole("link", { name: "Admin" }).count()).resolves.toBe(0);
  for (const section of ["users", "keys", "grants", "config", "guilds", "audit"]) {
    const before = tab.operations.length;
    await tab.goto(`/console/admin/${section}`);
    await page.getByTestId("admins-only").waitFor();
    await expect(page.getByRole("heading", { name: "Admins only" }).count()).resolves.toBe(1);
    // Nothing admin-only was asked for: only the viewer, on load.
    expect(tab.operations.slice(before).map((operation) => operation.operationName)).toEqual(["ConsoleViewer"]);
  }
});

suite.test("an admin changes a user's role and deactivates and reactivates them", async ({ open }) => {
  const bob = await suite.app.makeUser(Role.MEMBER, `Bob ${Date.now()}`);
  const tab = await open();
  await tab.signIn(admin.token);
  const { page } = tab;
  await tab.goto("/console/admin/users");
  // Found by typing part of the name, in another case: the table then lists only users whose name or email holds it.
  const part = bob.user.displayName.slice(2).toUpperCase();
  await page.getByLabel("Search users").fill(part);
  const row = page.locator(`[data-user-id="${bob.user.id}"]`);
  await row.waitFor();
  await page.waitForFunction((text) => [...document.querySelectorAll('[data-testid="users-table"] tbody tr')].every((tr) => tr.textContent!.toUpperCase().includes(text)), part);
  expect(tab.operations.filter((operation) => operation.operationName === "ConsoleUsers").at(-1)!.variables.filter).toEqual({ search: part });
  await row.getByRole("combobox").selectOption("SERVICE");
  await page.waitForFunction((id) => (document.querySelector(`[data-user-id="${id}"] select`) as HTMLSelectElement | null)?.value === "SERVICE", bob.user.id);
  await row.getByRole("button", { name: "Deactivate" }).click();
  await row.getByText("deactivated").waitFor();
  await row.getByRole("button", { name: "Reactivate" }).click();
  await row.getByText("active", { exact: true }).waitFor();
  const stored = await suite.app.ok<{ users: { edges: { node: { id: string; role: string; isActive: boolean } }[] } }>(`query { users(first: 100) { edges { node { id role isActive } } } }`, {}, admin.token);
  expect(stored.users.edges.find((edge) => edge.node.id === bob.user.id)?.node).toEqual({ id: bob.user.id, role: "SERVICE", isActive: true });
});

suite.test("an admin grants a service, picked by name, every Discord conversation and revokes it, and reads the audit log by filter", async ({ open }) => {
  // More people than a picker shows at once, so that its search is what finds the actor below.
  await suite.app.database.db.knex("users").insert(Array.from({ length: 21 }, (_, i) => ({ display_name: `Filler member ${i}`, role: "member" })));
  const service = await suite.app.makeUser(Role.SERVICE, `relay-${Date.now()}`);
  const email = `${service.user.displayName}@bots.example.org`;
  await suite.app.database.db.knex("users").where({ id: service.user.id }).update({ email });
  const tab = await open();
  await tab.signIn(admin.token);
  const { page } = tab;
  page.on("dialog", (dialog) => void dialog.accept());
  await tab.goto("/console/admin/grants");
  await page.getByTestId("grants-table").waitFor();
  // Services only, by name (and email): not members, not ids.
  const picker = page.getByLabel("Service", { exact: true });
  await picker.locator(`option[value="${service.user.id}"]`).waitFor({ state: "attached" });
  const options = await picker.locator("option").evaluateAll((nodes) => nodes.map((node) => node.textContent));
  expect(options).toContain(`${service.user.displayName} (${email})`);
  expect(options).not.toContain(alice.user.displayName);
  await picker.selectOption({ label: `${service.user.displayName} (${email})` });
  await page.getByLabel("Origin", { exact: true }).selectOption("DISCORD");
  await page.getByRole("button", { name: "Grant" }).click();
  const row = page.locator('[data-testid="grants-table"] tr', { hasText: service.user.displayName });
  await row.getByText("every discord conversation").waitFor();
  const granted = await suite.app.ok<{ serviceGrants: { id: string; origin: string | null }[] }>(`query($id: UUID!) { serviceGrants(serviceId: $id) { id origin } }`, { id: service.user.id }, admin.token);
  expect(granted.serviceGrants.map((grant) => grant.origin)).toEqual(["DISCORD"]);
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row.waitFor({ state: "detached" })).resolves.toBeUndefined();
  const left = await suite.app.ok<{ serviceGrants: unknown[] }>(`query($id: UUID!) { serviceGrants(serviceId: $id) { id } }`, { id: service.user.id }, admin.token);
  expect(left.serviceGrants).toEqual([]);

  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByTestId("audit-table").waitFor();
  // The grant's two entries, newest first; then only its revocation.
  const grantId = granted.serviceGrants[0].id;
  const auditRows = page.locator('[data-testid="audit-table"] tbody tr');
  await page.getByLabel("Target id").fill(grantId);
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByTestId("audit-total").filter({ hasText: /^2 entries$/ }).waitFor();
  await expect(auditRows.evaluateAll((rows) => rows.map((row) => row.getAttribute("data-action")))).resolves.toEqual(["grant.revoke", "grant.create"]);
  await page.getByLabel("Action").fill("grant.revoke");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByTestId("audit-total").filter({ hasText: /^1 entry$/ }).waitFor();
  await expect(auditRows.evaluateAll((rows) => rows.map((row) => row.getAttribute("data-action")))).resolves.toEqual(["grant.revoke"]);
  const sent = tab.operations.filter((operation) => operation.operationName === "ConsoleAuditLogs").at(-1)!;
  expect(sent.variables.filter).toEqual({ action: "grant.revoke", targetId: grantId });
  // The actor by name, and picked by name in the filter.
  await expect(auditRows.first().locator('[data-col="actor"]').textContent()).resolves.toBe("Ada Admin");
  await page.getByLabel("Action").fill("");
  await page.getByLabel("Target id").fill("");
  // The picker lists PICKER_SIZE people and says how many more there are; typing narrows it to the actor.
  const everyone = (await suite.app.ok<{ users: { totalCount: number } }>(`query { users(first: 1) { totalCount } }`, {}, admin.token)).users.totalCount;
  expect(everyone).toBeGreaterThan(20);
  await page.getByTestId("picker-more").filter({ hasText: `${everyone - 20} more: type to narrow` }).waitFor();
  await page.getByLabel("Find actor").fill("ada ad");
  await page.getByTestId("picker-more").waitFor({ state: "detached" });
  await page.getByLabel("Actor", { exact: true }).locator(`option[value="${admin.user.id}"]`).waitFor({ state: "attached" });
  expect(tab.operations.filter((operation) => operation.operationName === "ConsoleUsers").at(-1)!.variables.filter).toEqual({ search: "ada ad" });
  await page.getByLabel("Actor", { exact: true }).selectOption({ label: "Ada Admin" });
  await page.getByRole("button", { name: "Filter" }).click();
  // More than the one entry shown before: the admin both granted and revoked.
  const byAdmin = await suite.app.ok<{ auditLogs: { totalCount: number } }>(`query($id: UUID!) { auditLogs(first: 1, filter: { actorId: $id }) { totalCount } }`, { id: admin.user.id }, admin.token);
  expect(byAdmin.auditLogs.totalCount).toBeGreaterThan(1);
  await page.getByTestId("audit-total").filter({ hasText: new RegExp(`^${byAdmin.auditLogs.totalCount} entries$`) }).waitFor();
  expect(tab.operations.filter((operation) => operation.operationName === "ConsoleAuditLogs").at(-1)!.variables.filter).toEqual({ actorId: admin.user.id });
  await expect(page.locator('[data-testid="audit-table"] tbody [data-col="actor"]').evaluateAll((cells) => [...new Set(cells.map((cell) => cell.textContent))])).resolves.toEqual(["Ada Admin"]);

  // An entry without an actor: Parley itself, or an account deleted since.
  await suite.app.database.db.knex("audit_logs").insert({ action: "retention.run", details: { deleted: 0 } });
  await page.getByLabel("Actor", { exact: true }).selectOption({ label: "anyone" });
  await page.getByLabel("Action").fill("retention.run");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByTestId("audit-total").filter({ hasText: /^1 entry$/ }).waitFor();
  await expect(auditRows.first().locator('[data-col="actor"]').textContent()).resolves.toBe("system or deleted account");
});

suite.test("a settings editor refuses invalid JSON inline and shows the server's refusal of a bad retention policy", async ({ open }) => {
  const tab = await open();
  await tab.signIn(admin.token);
  const { page } = tab;
  await tab.goto("/console/admin/config");
  await page.getByTestId("new-setting-key").fill("retention");
  const editor = page.getByTestId("config-editor-retention");
  const text = editor.getByRole("textbox");
  await text.fill('{"metricsDays": ');
  await editor.getByTestId("json-error").waitFor();
  await expect(editor.getByTestId("json-error").textContent()).resolves.toMatch(/^Not valid JSON/);
  await expect(editor.getByRole("button", { name: "Save" }).isDisabled()).resolves.toBe(true);
  const sent = tab.operations.length;

  await text.fill('{"metricsDays": -3}');
  await expect(editor.getByTestId("json-error").count()).resolves.toBe(0);
  expect(tab.operations.length).toBe(sent); // nothing was sent while it did not parse
  await editor.getByRole("button", { name: "Save" }).click();
  await editor.getByTestId("server-error").waitFor();
  await expect(editor.getByTestId("server-error").textContent()).resolves.toMatch(/metricsDays/);

  // A guild's settings: the same editor, the server's refusal of an unknown key shown under it.
  await page.getByRole("link", { name: "Guild settings" }).click();
  await page.getByLabel("Discord guild id").fill("123456789012345678");
  await page.getByRole("button", { name: "Open" }).click();
  const guild = page.getByTestId("config-editor-Guild 123456789012345678");
  await guild.getByRole("textbox").fill('{"notASetting": true}');
  await guild.getByRole("button", { name: "Save" }).click();
  await guild.getByTestId("server-error").waitFor();
  await guild.getByRole("textbox").fill('{"language": "simple"}');
  await guild.getByRole("button", { name: "Save" }).click();
  await guild.getByRole("status").filter({ hasText: /^Saved/ }).waitFor();
  const stored = await suite.app.ok<{ guildConfig: { settings: unknown } | null }>(`query { guildConfig(guildId: "123456789012345678") { settings } }`, {}, admin.token);
  expect(stored.guildConfig?.settings).toEqual({ language: "simple" });
});

for (const viewport of [
  { width: 375, height: 740, colorScheme: "dark" as const },
  { width: 1440, height: 900, colorScheme: "light" as const },
]) {
  suite.test(`usage and admin pages fit ${viewport.width} px, every part of them (${viewport.colorScheme} theme)`, async ({ open }) => {
    await Promise.all([seedUsage(), seedWideRows()]);
    const tab = await open(viewport);
    await tab.signIn(admin.token);
    const { page } = tab;
    await tab.goto("/console/usage");
    await page.getByTestId("usage-table").waitFor();
    await page.getByTestId("budget-gauge").first().waitFor();
    await page.locator('[data-testid="chart-cost-per-day-by-model"] canvas').waitFor();
    expect(await offscreenElements(page)).toEqual([]);
    await screenshot(page, `usage-${viewport.width}-${viewport.colorScheme}`);
    for (const [section, table] of [["users", "users-table"], ["keys", "keys-table"], ["grants", "grants-table"], ["config", null], ["guilds", null], ["audit", "audit-table"]] as const) {
      await tab.goto(`/console/admin/${section}`);
      await page.getByTestId("admin-page").waitFor();
      if (table) await page.locator(`[data-testid="${table}"] tbody tr`).first().waitFor();
      await page.waitForLoadState("networkidle");
      expect(await offscreenElements(page)).toEqual([]);
      await screenshot(page, `admin-${section}-${viewport.width}-${viewport.colorScheme}`);
    }
    const id = await createConversation(admin, "A conversation with a title long enough to wrap on a phone screen");
    await tab.goto(`/console/conversations/${id}`);
    await page.getByTestId("chat").waitFor();
    await page.getByRole("button", { name: "Export" }).first().click();
    expect(await overflow(page)).toBe(0);
  });
}

// Not a check but the README's pictures, which rewrite committed files: registered only when asked for.
const screenshots: typeof suite.test = (...args) => (process.env.PARLEY_SCREENSHOTS === "1" ? suite.test(...args) : undefined);

screenshots("writes the README's screenshots of the chat and usage views (PARLEY_SCREENSHOTS=1)", async ({ open }) => {
  await seedUsage();
  const worker = await suite.app.makeUser(Role.SERVICE, "gpt-4o worker");
  const id = await createConversation(alice, "Release notes for 2.4");
  await suite.app.grant(worker, { conversationId: id });
  for (const title of ["Onboarding checklist", "Incident review: API latency", "Weekly metrics summary"]) await createConversation(alice, title);
  await addMessage(alice.token, id, "Can you draft release notes for 2.4? The highlights: the usage page, faster search, and the new admin pages.");
  await addMessage(
    worker.token,
    id,
    [
      "Here is a first draft:",
      "",
      "## Parley 2.4",
      "",
      "- **Usage page**: cost per day by model, tokens, error rate and budgets, with live alerts.",
      "- **Search**: find any message by its words, in every conversation you can read.",
      "- **Admin pages**: users, API keys and settings, in the console.",
      "",
      "To try it:",
      "",
      "```sh",
      "npm start   # then open http://localhost:4000/console",
      "```",
    ].join("\n"),
    { role: "ASSISTANT", model: "gpt-4o" },
  );
  await addMessage(alice.token, id, "Great. Add a line about the transcript export too.");
  const tab = await open({ width: 1440, height: 900, colorScheme: "light" });
  await tab.signIn(alice.token);
  const { page } = tab;
  await tab.goto(`/console/conversations/${id}`);
  await page.getByTestId("chat").waitFor();
  await page.waitForLoadState("networkidle");
  await screenshot(page, "console-chat", DOCS);

  // The usage page as a team would see it: the other tests' budgets and alerts cleared away first.
  const { budgets } = await suite.app.ok<{ budgets: { edges: { node: { budget: { id: string } } }[] } }>(`query { budgets(first: 100) { edges { node { budget { id } } } } }`, {}, admin.token);
  for (const { node } of budgets.edges) await suite.app.ok(`mutation($id: UUID!) { deleteBudget(id: $id) }`, { id: node.budget.id }, admin.token);
  const { alerts } = await suite.app.ok<{ alerts: { edges: { node: { id: string } }[] } }>(`query { alerts(first: 100, filter: { resolved: false }) { edges { node { id } } } }`, {}, admin.token);
  for (const { node } of alerts.edges) await suite.app.ok(`mutation($id: UUID!) { resolveAlert(id: $id) { id } }`, { id: node.id }, admin.token);
  await setBudget({ userId: alice.user.id, limitUsd: 2, period: "MONTHLY" });
  await setBudget({ guildId: "112233445566778899", limitUsd: 50, period: "WEEKLY", enforcement: "HARD" });
  await suite.app.ok(
    `mutation($input: RaiseAlertInput!) { raiseAlert(input: $input) { id } }`,
    { input: { severity: "WARNING", source: "budget-watch", message: "Team spend passed 80% of the monthly budget" } },
    admin.token,
  );
  const adminTab = await open({ width: 1440, height: 900, colorScheme: "light" });
  await adminTab.signIn(admin.token);
  await adminTab.goto("/console/usage");
  await adminTab.page.getByTestId("usage-table").waitFor();
  await adminTab.page.locator('[data-testid="chart-cost-per-day-by-model"] canvas').waitFor();
  await adminTab.page.getByTestId("budget-gauge").nth(1).waitFor();
  await adminTab.page.waitForLoadState("networkidle");
  await screenshot(adminTab.page, "console-usage", DOCS);
});
