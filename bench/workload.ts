/**
 * The DESIGN.md "Benchmark workload", shared by every benchmark: 1,000 members with 10 conversations each,
 * 100 messages per conversation (alternating user/assistant, 200 characters), seeded with set-based SQL
 * (generate_series) on a migrated database in well under a minute instead of a million API calls.
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";

export const MEMBERS = 1_000;
export const CONVERSATIONS_PER_MEMBER = 10;
export const MESSAGES_PER_CONVERSATION = 100;
/** Messages per history (H) request. */
export const H_PAGE = 50;
/** Conversations per inbox (I) request. */
export const I_PAGE = 20;

export interface SeedStep {
  step: string;
  seconds: number;
}

/** Seeds the workload, then `extra` steps, then VACUUM ANALYZE; returns the seconds each step took. */
export async function seedWorkload(owner: pg.Client, extra: { name: string; sql: string[] }[] = []): Promise<SeedStep[]> {
  const steps: SeedStep[] = [];
  const step = async (name: string, ...sql: string[]) => {
    const t0 = performance.now();
    for (const s of sql) await owner.query(s);
    steps.push({ step: name, seconds: (performance.now() - t0) / 1000 });
  };
  await owner.query("select setseed(0.42)"); // the same data on every run
  await step(
    "users (1,000 members + 10 services)",
    `insert into users (display_name, email, role, created_at, updated_at)
     select 'Member ' || n, 'member' || n || '@bench.test', 'member', t, t
     from generate_series(1, ${MEMBERS}) n, lateral (select timestamptz '2025-01-01' + n * interval '1 minute' as t) x`,
    // The assistant authors the assistant messages; the discord adapter is the measured service.
    `insert into users (display_name, email, role)
     select name, lower(replace(name, ' ', '-')) || '@bench.test', 'service'
     from unnest(array['Assistant', 'Discord adapter', 'Service 3', 'Service 4', 'Service 5', 'Service 6',
                       'Service 7', 'Service 8', 'Service 9', 'Service 10']) name`,
  );
  await step(
    "conversations (10,000)",
    // Inserted in start-time order, so the messages below (written conversation by conversation) land in
    // the heap roughly in the order a live system would have written them.
    `insert into conversations (owner_id, title, origin, last_seq, message_count, created_at, updated_at)
     select owner_id, 'Conversation ' || k,
            case when k % 10 < 6 then 'web' when k % 10 < 9 then 'discord' else 'api' end,
            ${MESSAGES_PER_CONVERSATION}, ${MESSAGES_PER_CONVERSATION},
            started, started + ${MESSAGES_PER_CONVERSATION} * interval '1 minute'
     from (select u.id as owner_id, (u.n - 1) * ${CONVERSATIONS_PER_MEMBER} + j as k,
                  timestamptz '2025-01-01' + random() * interval '300 days' as started
           from (select id, row_number() over (order by email) as n from users where role = 'member') u,
                generate_series(0, ${CONVERSATIONS_PER_MEMBER - 1}) j) s
     order by started`,
  );
  await step(
    "messages (1,000,000)",
    // Replica mode skips the per-row foreign-key triggers (2M lookups): the rows reference existing
    // conversations and users by construction, and the app's later writes run with every trigger on.
    "set session_replication_role = replica",
    `insert into messages (conversation_id, seq, author_id, role, content, created_at, updated_at)
     select c.id, s,
            case when s % 2 = 1 then c.owner_id else a.id end,
            case when s % 2 = 1 then 'user' else 'assistant' end,
            left(repeat(md5(c.id::text || ':' || s), 7), 200),
            c.created_at + s * interval '1 minute', c.created_at + s * interval '1 minute'
     from conversations c
     cross join (select id from users where email = 'assistant@bench.test') a
     cross join lateral generate_series(1, ${MESSAGES_PER_CONVERSATION}) s`,
    "set session_replication_role = origin",
  );
  for (const { name, sql } of extra) await step(name, ...sql);
  // VACUUM as well as ANALYZE: sets hint bits and the visibility map now, so the first measured variant does
  // not pay for writing them back.
  await step("vacuum analyze", "vacuum analyze");
  return steps;
}

