import type { Knex } from "knex";

/**
 * User profiles: one roll-up row per user (user_activity) that User.activity reads with a primary-key lookup,
 * kept current by triggers on the writes that change it, so no request ever counts a user's messages.
 *
 *   messages_sent    USER messages the user wrote (or a service wrote as them). A lifetime count: deleting a
 *                    conversation does not take back what was sent. Only USER rows fire the trigger (its WHEN
 *                    is checked without calling a function), so services writing assistant replies into many
 *                    conversations never queue up on one counter row.
 *   conversations    conversations the user owns now: created +1, deleted -1 (per statement, so deleting a user's
 *                    many conversations is one update).
 *   feedback_given   feedback rows of the user now (when the feedback table exists; see below).
 *   first/last_active_at   the earliest and latest of those writes (sent, created, rated), from the rows' own
 *                    created_at, so imports and seeds that carry old times place activity where it happened.
 *
 * Inserts upsert with `on conflict do update`: the first write of a user creates the row, and concurrent writers
 * of one user serialize on that row only until their statement's transaction ends. A user without a row has done
 * nothing yet (all counts 0). The row goes with the user. The triggers are per row because the hot path inserts one
 * row per statement; a future bulk import of one author's many messages in one transaction would update that row once
 * per message (each update a new row version kept until commit), so it should add its counts in one statement instead.
 *
 * The feedback table comes from 20261202000600_feedback; its triggers and backfill are made only when it exists
 * (a database migrated without that feature counts no feedback, and re-running this migration adds them).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table user_activity (
    user_id uuid primary key references users(id) on delete cascade,
    messages_sent bigint not null default 0 check (messages_sent >= 0),
    conversations bigint not null default 0 check (conversations >= 0),
    feedback_given bigint not null default 0 check (feedback_given >= 0),
    first_active_at timestamptz(3),
    last_active_at timestamptz(3))`);

  // One function for every insert: which counter to bump is the trigger's argument, whose column is the user.
  await knex.raw(`
    create function parley_user_activity_added() returns trigger language plpgsql as $$
    declare
      who uuid;
    begin
      -- Branches, not one expression: an expression naming a column the row does not have fails even unused.
      if tg_argv[0] = 'messages_sent' then who := new.author_id;
      elsif tg_argv[0] = 'conversations' then who := new.owner_id;
      else who := new.user_id;
      end if;
      insert into user_activity as a (user_id, messages_sent, conversations, feedback_given, first_active_at, last_active_at)
      values (who, (tg_argv[0] = 'messages_sent')::int, (tg_argv[0] = 'conversations')::int, (tg_argv[0] = 'feedback_given')::int,
        new.created_at, new.created_at)
      on conflict (user_id) do update set
        messages_sent = a.messages_sent + excluded.messages_sent,
        conversations = a.conversations + excluded.conversations,
        feedback_given = a.feedback_given + excluded.feedback_given,
        -- least/greatest skip nulls: a row created by a delete's clamp has no times yet
        first_active_at = least(a.first_active_at, excluded.first_active_at),
        last_active_at = greatest(a.last_active_at, excluded.last_active_at);
      return null;
    end $$`);

  // Deletes come in sets (a user's conversations, a conversation's feedback by cascade): one update per statement.
  // Clamped at 0, so that a count that drifted (rows removed by TRUNCATE, or written with triggers disabled) never
  // makes a delete fail on the check constraint.
  await knex.raw(`
    create function parley_user_activity_removed() returns trigger language plpgsql as $$
    begin
      if tg_argv[0] = 'conversations' then
        update user_activity a set conversations = greatest(a.conversations - d.n, 0)
        from (select owner_id, count(*) as n from old_rows group by owner_id) d where a.user_id = d.owner_id;
      else
        update user_activity a set feedback_given = greatest(a.feedback_given - d.n, 0)
        from (select user_id, count(*) as n from old_rows where user_id is not null group by user_id) d where a.user_id = d.user_id;
      end if;
      return null;
    end $$`);

  await knex.raw(`create trigger messages_user_activity after insert on messages
    for each row when (new.role = 'user' and new.author_id is not null)
    execute function parley_user_activity_added('messages_sent')`);
  await knex.raw(`create trigger conversations_user_activity_added after insert on conversations
    for each row execute function parley_user_activity_added('conversations')`);
  await knex.raw(`create trigger conversations_user_activity_removed after delete on conversations
    referencing old table as old_rows for each statement execute function parley_user_activity_removed('conversations')`);

  const withFeedback = await knex.schema.hasTable("feedback");
  if (withFeedback) {
    await knex.raw(`create trigger feedback_user_activity_added after insert on feedback
      for each row when (new.user_id is not null) execute function parley_user_activity_added('feedback_given')`);
    await knex.raw(`create trigger feedback_user_activity_removed after delete on feedback
      referencing old table as old_rows for each statement execute function parley_user_activity_removed('feedback')`);
  }

  // The existing rows, in one statement.
  const feedback = withFeedback
    ? "union all select user_id, 0, 0, 1, created_at from feedback where user_id is not null"
    : "";
  await knex.raw(`insert into user_activity (user_id, messages_sent, conversations, feedback_given, first_active_at, last_active_at)
    select w.user_id, sum(w.sent), sum(w.owned), sum(w.rated), min(w.at), max(w.at)
    from (
      select author_id as user_id, 1 as sent, 0 as owned, 0 as rated, created_at as at from messages where role = 'user' and author_id is not null
      union all select owner_id, 0, 1, 0, created_at from conversations
      ${feedback}
    ) w
    group by w.user_id`);
}

export async function down(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable("feedback")) {
    await knex.raw("drop trigger if exists feedback_user_activity_removed on feedback");
    await knex.raw("drop trigger if exists feedback_user_activity_added on feedback");
  }
  await knex.raw("drop trigger conversations_user_activity_removed on conversations");
  await knex.raw("drop trigger conversations_user_activity_added on conversations");
  await knex.raw("drop trigger messages_user_activity on messages");
  await knex.raw("drop function parley_user_activity_removed()");
  await knex.raw("drop function parley_user_activity_added()");
  await knex.raw("drop table user_activity");
}
