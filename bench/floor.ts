/**
 * The floor: the least a server can do for H, I and W — a bare node http server, one hand-written
 * statement per request through a pg Pool (named, so prepared once per connection), with PostgreSQL building
 * the JSON answer so that Node passes the text through untouched. No GraphQL, no auth, no validation.
 *
 * Started by bench/run.ts: DATABASE_URL, PORT, POOL_MAX; prints `listening <port>`.
 */
import http from "node:http";
import pg from "pg";
import { H_PAGE, I_PAGE } from "./workload";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_MAX ?? 10) });

const H = `select json_build_object('id', c.id, 'title', c.title, 'messages', coalesce((
    select json_agg(json_build_object('id', x.id, 'role', x.role, 'content', x.content, 'createdAt', x.created_at,
      'author', case when u.id is null then null else json_build_object('id', u.id, 'displayName', u.display_name) end) order by x.seq)
    from (select id, seq, role, content, created_at, author_id from messages where conversation_id = c.id order by seq desc limit ${H_PAGE}) x
    left join users u on u.id = x.author_id), '[]'::json))::text as body
  from conversations c where c.id = $1`;

const I = `select coalesce(json_agg(json_build_object('id', c.id, 'title', c.title, 'updatedAt', c.updated_at,
    'lastMessage', case when m.id is null then null else json_build_object('id', m.id, 'role', m.role, 'content', m.content, 'createdAt', m.created_at) end)
    order by c.updated_at desc, c.id desc), '[]'::json)::text as body
  from (select id, title, updated_at from conversations where owner_id = $1 order by updated_at desc, id desc limit ${I_PAGE}) c
  left join lateral (select id, role, content, created_at from messages where conversation_id = c.id order by seq desc limit 1) m on true`;

// One statement: the conversation's counters move and the message is inserted atomically.
const W = `with c as (
    update conversations set last_seq = last_seq + 1, message_count = message_count + 1, updated_at = now()
    where id = $1 returning id, last_seq)
  insert into messages (conversation_id, seq, author_id, role, content)
  select c.id, c.last_seq, $2, 'user', $3 from c
  returning json_build_object('id', id)::text as body`;

const statements: Record<string, { name: string; text: string; args: (input: any) => unknown[] }> = {
  "/h": { name: "floor_h", text: H, args: (input) => [input.id] },
  "/i": { name: "floor_i", text: I, args: (input) => [input.userId] },
  "/w": { name: "floor_w", text: W, args: (input) => [input.conversationId, input.userId, input.content] },
};

const server = http.createServer((req, res) => {
  const statement = statements[req.url ?? ""];
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (raw += chunk));
  req.on("end", async () => {
    try {
      if (!statement) throw new Error("unknown operation");
      const { rows } = await pool.query({ name: statement.name, text: statement.text, values: statement.args(JSON.parse(raw)) });
      res.writeHead(rows.length ? 200 : 404, { "content-type": "application/json" });
      res.end(rows.length ? rows[0].body : "null");
    } catch (error) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(error));
    }
  });
});

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`listening ${(server.address() as { port: number }).port}`);
});
process.on("SIGTERM", () => {
  server.close();
  void pool.end().then(() => process.exit(0));
});
