/**
 * A deterministic generator of read operations over the hot types (Conversation, Message, User), for
 * test/api/read-planner.test.ts: the same seed always gives the same operations, so a failure is reproduced by
 * its seed and operation number.
 *
 * An operation is generated before any data exists: ids and cursors are named (`{ conversation: "long" }`,
 * `{ cursor: "message", at: 0.4 }`) and resolved against the seeded data when the operation runs. Cursors come
 * from answers the test read earlier; `at` picks one by its position in that list.
 *
 * What the operations are made of: random subsets of scalar fields in random order (the planner's statement
 * text depends on it), aliases, the same field twice with other arguments, named and inline fragments (with
 * and without a type condition), @include/@skip on fields and fragments (literal and variable), relations up to
 * three levels below the root, pages either way with cursors, sizes as variables (with defaults too), invalid
 * paging arguments, fields whose resolvers are not the planner's (transcripts, feedback, activity, private user
 * fields), several roots, and roots of the same shape for other ids (the planner shares one statement).
 *
 * Every field that takes arguments and may meet another of its name at the same level gets an alias of its own,
 * so operations pass validation ("fields … conflict") except the few that are made invalid on purpose.
 */

/** mulberry32: small, fast, and the same on every platform. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let roll = this.next() * choices.reduce((sum, [weight]) => sum + weight, 0);
    for (const [weight, value] of choices) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return choices[choices.length - 1][1];
  }

  /** Between min and max distinct items, in random order. */
  subset<T>(items: readonly T[], min: number, max: number): T[] {
    const pool = [...items];
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, this.int(min, Math.min(max, pool.length)));
  }
}

/** The seeded conversations, and two ids that name none: an unknown one, and the long one in upper case. */
export type ConversationName = "long" | "archived" | "discord" | "empty" | "broken" | "service" | "missing" | "upperCase";
export type UserName = "owner" | "admin";

export type VariableSource =
  | { value: unknown }
  | { conversation: ConversationName }
  /** A cursor of an earlier answer: of a message page (seq) or of a page of conversations (time, id). */
  | { cursor: "message" | "conversation"; at: number }
  | { filter: { ownerId?: UserName; status?: string; origin?: string } };

export interface World {
  conversations: Record<ConversationName, string>;
  users: Record<UserName, string>;
  messageCursors: readonly string[];
  conversationCursors: readonly string[];
}

export interface GeneratedOperation {
  index: number;
  /** The root fields, with their variables named after what they stand for. */
  summary: string;
  query: string;
  variables: Record<string, VariableSource>;
  /** What the operation exercises, for the check that the corpus covers everything it should. */
  features: Set<string>;
  /** Made to fail validation on purpose (an invalid literal): both servers must refuse it alike. */
  invalid: boolean;
}

export function resolveVariables(variables: Record<string, VariableSource>, world: World): Record<string, unknown> {
  const resolved: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(variables)) {
    if ("value" in source) resolved[name] = source.value;
    else if ("conversation" in source) resolved[name] = world.conversations[source.conversation];
    else if ("cursor" in source) {
      const pool = source.cursor === "message" ? world.messageCursors : world.conversationCursors;
      resolved[name] = pool[Math.floor(source.at * pool.length)];
    } else {
      const { ownerId, ...rest } = source.filter;
      resolved[name] = { ...rest, ...(ownerId ? { ownerId: world.users[ownerId] } : {}) };
    }
  }
  return resolved;
}

const CONVERSATION_SCALARS = ["id", "title", "origin", "discordGuildId", "discordChannelId", "parameters", "status", "messageCount", "endedAt", "createdAt", "updatedAt"];
const MESSAGE_SCALARS = [
  "id",
  "seq",
  "role",
  "status",
  "content",
  "chunkCount",
  "requestId",
  "metadata",
  "toolCalls",
  "model",
  "promptTokens",
  "completionTokens",
  "costUsd",
  "latencyMs",
  "createdAt",
  "updatedAt",
];
const USER_SCALARS = ["id", "displayName", "role", "isActive", "createdAt", "updatedAt"];
/** Shown to the user and admins only (null for others). */
const USER_PRIVATE = ["email", "externalId", "discordId", "preferences"];
const PAGE_INFO = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"];

/** Relation levels below the root: conversation → messages → conversation → messages is three. */
const MAX_DEPTH = 3;

interface Field {
  /** `alias: name(arguments)` */
  head: string;
  body?: string;
}

/** Where a selection sits: how deep, and the relations that led there ("Conversation.messages", …). */
interface Place {
  depth: number;
  path: string[];
  /** Alias every field that takes arguments: this selection may merge with another of the same key. */
  aliasAll: boolean;
}

class Builder {
  private names = 0;
  readonly definitions: string[] = [];
  readonly variables: Record<string, VariableSource> = {};
  /** Variable → what it stands for, for the summary. */
  readonly descriptions = new Map<string, string>();
  readonly fragments: string[] = [];
  readonly features = new Set<string>();
  invalid = false;

  constructor(readonly random: Random) {}

  alias(prefix: string): string {
    return `${prefix}${++this.names}`;
  }

  /** Declares a variable; without a source it is left out of the request (its default applies). */
  variable(type: string, source: VariableSource | undefined, description: string, defaultValue?: string): string {
    const name = `v${this.definitions.length}`;
    this.definitions.push(`$${name}: ${type}${defaultValue === undefined ? "" : ` = ${defaultValue}`}`);
    if (source) this.variables[name] = source;
    this.descriptions.set(`$${name}`, description);
    return `$${name}`;
  }

  fragment(type: string, selection: string): string {
    const name = `F${this.fragments.length}`;
    this.fragments.push(`fragment ${name} on ${type} ${selection}`);
    return name;
  }

  feature(name: string): void {
    this.features.add(name);
  }

  /** Records a relation taken at `path`, with the chains of two and three relations it ends. */
  relation(path: string[]): void {
    for (let length = 1; length <= Math.min(3, path.length); length++) this.feature(`path:${path.slice(-length).join(">")}`);
  }
}

function directive(b: Builder, p: number): string {
  const r = b.random;
  if (!r.chance(p)) return "";
  const kind = r.pick(["include", "skip"]);
  const value = r.chance(0.5);
  if (r.chance(0.8)) {
    b.feature(`@${kind}:variable`);
    return ` @${kind}(if: ${b.variable("Boolean!", { value }, String(value))})`;
  }
  b.feature(`@${kind}:literal`);
  return ` @${kind}(if: ${value})`;
}

function fieldText(b: Builder, field: Field): string {
  return `${field.head}${directive(b, 0.08)}${field.body ? ` ${field.body}` : ""}`;
}

/** A selection set of `type`: fields in groups, some groups as inline or named fragments. */
function render(b: Builder, type: string, fields: Field[]): string {
  const r = b.random;
  const parts: string[] = [];
  for (let i = 0; i < fields.length; ) {
    const take = r.int(1, Math.min(3, fields.length - i));
    const group = fields.slice(i, i + take).map((field) => fieldText(b, field));
    i += take;
    const roll = r.next();
    if (roll < 0.12) {
      b.feature(`inline:${type}`);
      parts.push(`... on ${type}${directive(b, 0.3)} { ${group.join(" ")} }`);
    } else if (roll < 0.22) {
      b.feature(`fragment:${type}`);
      parts.push(`...${b.fragment(type, `{ ${group.join(" ")} }`)}${directive(b, 0.25)}`);
    } else if (roll < 0.25) {
      b.feature("inline:untyped");
      parts.push(`...${directive(b, 1)} { ${group.join(" ")} }`);
    } else parts.push(...group);
  }
  return `{ ${parts.join(" ")} }`;
}

/** Some scalar fields of a type, a few aliased or asked twice. */
function scalars(b: Builder, names: readonly string[], min: number, max: number): Field[] {
  const r = b.random;
  const fields: Field[] = [];
  for (const name of r.subset(names, min, max)) {
    if (r.chance(0.1)) {
      b.feature("alias:scalar");
      fields.push({ head: `${b.alias("s")}: ${name}` });
      if (r.chance(0.5)) fields.push({ head: name }); // the same field under two keys
    } else fields.push({ head: name });
  }
  if (r.chance(0.1)) {
    b.feature("__typename");
    fields.push({ head: "__typename" });
  }
  return fields;
}

/**
 * A relation field without arguments (owner, author, …). Sometimes asked twice under the same key with other
 * subfields, in another group or fragment: execution merges the two, and so must the planner.
 */
function relation(b: Builder, name: string, place: Place, child: (place: Place) => { type: string; fields: Field[] }): Field[] {
  const path = [...place.path, name];
  b.relation(path);
  const r = b.random;
  const alias = r.chance(0.12) ? `${b.alias("x")}: ` : "";
  const made = child({ depth: place.depth + 1, path, aliasAll: place.aliasAll });
  const fields = [{ head: `${alias}${name.split(".")[1]}`, body: render(b, made.type, made.fields) }];
  if (r.chance(0.1)) {
    b.feature("merge:relation");
    const twin = child({ depth: place.depth + 1, path, aliasAll: true });
    fields.push({ head: fields[0].head, body: render(b, twin.type, twin.fields) });
  }
  return fields;
}

const BASE64URL = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** Arguments of a page (`messages` or `conversations`), valid or, sometimes, not. */
function pageArguments(b: Builder, kind: "message" | "conversation", depth: number): string {
  const r = b.random;
  const size = () => r.int(1, depth >= 2 ? 3 : 6);
  const cursor = (of: "message" | "conversation") => b.variable("String", { cursor: of, at: r.next() }, `${of}Cursor`);
  const other = kind === "message" ? "conversation" : "message";
  // A page of the default size (50) only near the root: below, every parent would list 50 rows.
  const shallow = depth < 2;
  const choice = r.weighted<() => string>([
    [shallow ? 1 : 0, () => (b.feature("page:default"), "")],
    [3, () => `first: ${size()}`],
    [3, () => `last: ${size()}`],
    [0.7, () => (b.feature("page:first0"), "first: 0")],
    [1.5, () => (b.feature("page:size-variable"), `first: ${b.variable("Int", { value: size() }, "n")}`)],
    [1, () => (b.feature("page:size-variable"), `last: ${b.variable("Int!", { value: size() }, "n")}`)],
    [0.6, () => (b.feature("page:size-default-variable"), `first: ${b.variable("Int", undefined, "default", String(size()))}`)],
    [2.5, () => (b.feature("page:after"), `first: ${size()}, after: ${cursor(kind)}`)],
    [2.5, () => (b.feature("page:before"), `last: ${size()}, before: ${cursor(kind)}`)],
    [shallow ? 0.5 : 0, () => (b.feature("page:after"), `after: ${cursor(kind)}`)],
    [0.3, () => (b.feature("page:null"), `first: null, last: ${size()}`)],
    [
      1.6,
      () => {
        b.feature("page:invalid");
        return r.pick<() => string>([
          () => "first: -1",
          () => "last: 101", // MAX_PAGE_SIZE is 100
          () => `first: 2, last: 2`,
          () => `first: 2, after: "forged"`,
          () => `first: 2, after: ${b.variable("String", { value: BASE64URL(kind === "message" ? ["x"] : ["2026-13-45T00:00:00.000Z", "nope"]) }, "forgedCursor")}`,
          () => `last: 2, before: ${cursor(other)}`, // a cursor of the other kind of page
          () => `first: 2, before: ${cursor(kind)}`,
          () => `after: ${cursor(kind)}, before: ${cursor(kind)}`,
          () => `first: ${b.variable("Int", { value: -3 }, "n")}`,
        ])();
      },
    ],
  ]);
  return choice();
}

function conversationFields(b: Builder, place: Place): { type: string; fields: Field[] } {
  const r = b.random;
  const fields = scalars(b, CONVERSATION_SCALARS, 1, 5);
  if (place.depth < MAX_DEPTH) {
    if (r.chance(0.4)) fields.push(...relation(b, "Conversation.owner", place, (child) => userFields(b, child)));
    if (r.chance(0.35)) fields.push(...relation(b, "Conversation.lastMessage", place, (child) => messageFields(b, child)));
    if (r.chance(0.6)) {
      fields.push(messagesField(b, place, false));
      if (r.chance(0.3)) {
        b.feature("alias:same-field-other-arguments");
        fields.push(messagesField(b, place, true));
      }
    }
  }
  if (r.chance(0.08)) {
    b.feature("fallback:Conversation.transcripts");
    const conversation =
      place.depth < MAX_DEPTH && r.chance(0.5) ? render(b, "Conversation", conversationFields(b, { ...place, depth: place.depth + 1, aliasAll: true }).fields) : "{ id title }";
    fields.push({ head: "transcripts", body: `{ id status format messageCount createdBy { displayName } conversation ${conversation} }` });
  }
  if (r.chance(0.06)) {
    b.feature("fallback:Conversation.artifacts");
    fields.push({ head: `${b.alias("k")}: artifacts${r.chance(0.5) ? "(kind: CODE)" : ""}`, body: "{ title kind version content message { seq role } }" });
  }
  if (r.chance(0.08)) {
    b.feature("fallback:Conversation.assistant");
    fields.push({ head: "assistant", body: "{ version model assistant { name } }" });
  }
  return { type: "Conversation", fields };
}

function messagesField(b: Builder, place: Place, forceAlias: boolean): Field {
  const r = b.random;
  const args = pageArguments(b, "message", place.depth + 1);
  const alias = forceAlias || place.aliasAll || r.chance(0.15) ? `${b.alias("m")}: ` : "";
  const path = [...place.path, "Conversation.messages"];
  b.relation(path);
  return {
    head: `${alias}messages${args ? `(${args})` : ""}`,
    body: connection(b, "Message", { depth: place.depth + 1, path, aliasAll: place.aliasAll }, (child) => messageFields(b, child)),
  };
}

/** A connection's selection: edges with their nodes, pageInfo, totalCount, in any mix. */
function connection(b: Builder, node: string, place: Place, nodeFields: (place: Place) => { type: string; fields: Field[] }): string {
  const r = b.random;
  const items: Field[] = [];
  if (r.chance(0.35)) {
    b.feature("totalCount");
    items.push({ head: "totalCount" });
  }
  if (r.chance(0.4)) {
    b.feature("pageInfo");
    items.push({ head: "pageInfo", body: render(b, "PageInfo", r.subset(PAGE_INFO, 1, 4).map((name) => ({ head: name }))) });
  }
  const edges = (aliasAll: boolean): Field["body"] => {
    const fields: Field[] = [];
    if (r.chance(0.4)) fields.push({ head: "cursor" });
    fields.push({ head: "node", body: render(b, node, nodeFields({ ...place, aliasAll: place.aliasAll || aliasAll }).fields) });
    return render(b, `${node}Edge`, fields);
  };
  if (items.length === 0 || r.chance(0.9)) items.push({ head: "edges", body: edges(false) });
  if (r.chance(0.06)) {
    // Nodes asked under two keys: the planner leaves such a page to the resolvers.
    b.feature("connection:edges-twice");
    items.push({ head: `${b.alias("e")}: edges`, body: edges(true) });
  }
  if (r.chance(0.08)) {
    b.feature("__typename");
    items.push({ head: "__typename" });
  }
  return render(b, `${node}Connection`, items);
}

function messageFields(b: Builder, place: Place): { type: string; fields: Field[] } {
  const r = b.random;
  const fields = scalars(b, MESSAGE_SCALARS, 1, 6);
  if (place.depth < MAX_DEPTH) {
    if (r.chance(0.4)) fields.push(...relation(b, "Message.author", place, (child) => userFields(b, child)));
    if (r.chance(0.25)) fields.push(...relation(b, "Message.sentBy", place, (child) => userFields(b, child)));
    if (r.chance(0.22)) fields.push(...relation(b, "Message.conversation", place, (child) => conversationFields(b, child)));
  }
  const extra = (feature: string, field: Field) => {
    b.feature(`fallback:${feature}`);
    fields.push(field);
  };
  if (r.chance(0.07)) extra("Message.myFeedback", { head: "myFeedback", body: "{ rating score tags comment user { displayName } }" });
  if (r.chance(0.07)) extra("Message.feedbackSummary", { head: "feedbackSummary", body: "{ up down ratings averageScore tags { tag count } }" });
  if (r.chance(0.06)) extra("Message.assistant", { head: "assistant", body: "{ version model assistant { name } }" });
  if (r.chance(0.05)) extra("Message.artifacts", { head: "artifacts", body: "{ title kind content language }" });
  if (r.chance(0.04)) extra("Message.discordPost", { head: "discordPost", body: "{ status channelId }" });
  return { type: "Message", fields };
}

function userFields(b: Builder, place: Place): { type: string; fields: Field[] } {
  const r = b.random;
  const fields = scalars(b, USER_SCALARS, 1, 4);
  if (r.chance(0.3)) {
    b.feature("private:User");
    fields.push(...r.subset(USER_PRIVATE, 1, 3).map((name) => ({ head: name })));
  }
  if (r.chance(0.1)) {
    b.feature("fallback:User.activity");
    const alias = place.aliasAll ? `${b.alias("f")}: ` : "";
    fields.push({ head: "activity", body: `{ messagesSent conversations feedbackGiven lastActiveAt ${alias}favouriteModels(first: 2) { model requests costUsd } }` });
  }
  return { type: "User", fields };
}

const CONVERSATION_IDS: readonly (readonly [number, ConversationName | "invalid"])[] = [
  [5, "long"],
  [1.5, "archived"],
  [1.5, "discord"],
  [1, "empty"],
  [1, "broken"],
  [1, "service"],
  [1, "missing"],
  [0.6, "upperCase"],
  [0.3, "invalid"],
];

interface Root {
  kind: "conversation" | "conversations";
  field: Field;
}

function conversationRoot(b: Builder, alias: string): Root {
  const name = b.random.weighted(CONVERSATION_IDS);
  let id: string;
  if (name === "invalid") {
    b.invalid = true;
    id = `"not-a-uuid"`;
  } else id = b.variable("UUID!", { conversation: name }, name);
  b.feature(`root:conversation:${name}`);
  const made = conversationFields(b, { depth: 0, path: ["Query.conversation"], aliasAll: false });
  return { kind: "conversation", field: { head: `${alias}conversation(id: ${id})`, body: render(b, made.type, made.fields) } };
}

const FILTERS: readonly (readonly [number, ((b: Builder) => string) | undefined])[] = [
  [4, undefined],
  [1, () => "{ status: ACTIVE }"],
  [1, () => "{ status: ARCHIVED }"],
  [1.5, (b) => `{ origin: ${b.random.pick(["WEB", "API", "DISCORD"])} }`],
  [0.5, () => "{ status: ACTIVE, origin: API }"],
  [1.5, (b) => b.variable("ConversationFilter", { filter: { ownerId: "owner" } }, "{ownerId: owner}")],
  [0.5, (b) => b.variable("ConversationFilter!", { filter: { ownerId: "owner", status: "ACTIVE", origin: "WEB" } }, "{ownerId: owner, ACTIVE, WEB}")],
  [0.4, (b) => b.variable("ConversationFilter", { filter: { ownerId: "admin" } }, "{ownerId: admin}")],
];

function conversationsRoot(b: Builder, alias: string): Root {
  const filter = b.random.weighted(FILTERS)?.(b);
  const args = [pageArguments(b, "conversation", 0), filter && `filter: ${filter}`].filter(Boolean).join(", ");
  b.feature(filter ? "root:conversations:filter" : "root:conversations");
  const body = connection(b, "Conversation", { depth: 0, path: ["Query.conversations"], aliasAll: false }, (place) => conversationFields(b, place));
  return { kind: "conversations", field: { head: `${alias}conversations${args ? `(${args})` : ""}`, body } };
}

function operationText(b: Builder, name: string, selections: string[]): string {
  const definitions = b.definitions.length ? `(${b.definitions.join(", ")})` : "";
  return [`query ${name}${definitions} { ${selections.join(" ")} }`, ...b.fragments].join("\n");
}

export function generateOperation(seed: number, index: number): GeneratedOperation {
  // One stream per operation: changing how one operation is built leaves the others as they were.
  const b = new Builder(new Random(seed ^ Math.imul(index + 1, 0x9e3779b1)));
  const r = b.random;
  const count = r.weighted([
    [6, 1],
    [3, 2],
    [1, 3],
  ] as const);
  const roots: Root[] = [];
  for (let k = 0; k < count; k++) {
    const alias = count > 1 || r.chance(0.2) ? `r${k}: ` : "";
    const previous = roots[roots.length - 1];
    if (previous?.kind === "conversation" && r.chance(0.45)) {
      // The same selection for another conversation: the planner answers both roots with one statement.
      b.feature("root:same-shape");
      const name = r.weighted(CONVERSATION_IDS.filter(([, id]) => id !== "invalid") as [number, ConversationName][]);
      const id = b.variable("UUID!", { conversation: name }, name);
      roots.push({ kind: "conversation", field: { head: `${alias}conversation(id: ${id})`, body: previous.field.body } });
    } else if (r.chance(0.7)) roots.push(conversationRoot(b, alias));
    else roots.push(conversationsRoot(b, alias));
  }
  if (count > 1) b.feature("roots:several");
  const selections = roots.map((root) => `${root.field.head}${directive(b, 0.05)} ${root.field.body}`);
  const summary = roots.map((root) => root.field.head.replace(/\$v\d+/g, (name) => b.descriptions.get(name) ?? name)).join(" + ");
  return {
    index,
    summary: b.invalid ? `${summary} [invalid]` : summary,
    query: operationText(b, `Op${index}`, selections),
    variables: b.variables,
    features: b.features,
    invalid: b.invalid,
  };
}

export function generateCorpus(seed: number, size: number): GeneratedOperation[] {
  return Array.from({ length: size }, (_, index) => generateOperation(seed, index));
}

/**
 * An operation that walks pages: `$size` and `$cursor` (null first, then a cursor of the previous answer) are
 * the caller's; the nodes' selection is random. Messages of conversation `$id`, or the viewer's conversations
 * (with `$filter`).
 */
export function pageWalk(seed: number, kind: "message" | "conversation", direction: "forward" | "backward"): { query: string; variables: Record<string, VariableSource> } {
  const b = new Builder(new Random(seed ^ (kind === "message" ? 0x51ed : 0xc0de) ^ (direction === "forward" ? 0 : 0xbac)));
  const page = direction === "forward" ? "first: $size, after: $cursor" : "last: $size, before: $cursor";
  const pageInfo = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";
  let selection: string;
  if (kind === "message") {
    const nodes = messageFields(b, { depth: 1, path: ["Query.conversation", "Conversation.messages"], aliasAll: false });
    const nodeSelection = render(b, nodes.type, nodes.fields);
    selection = `conversation(id: $id) { id messages(${page}) { ${pageInfo} edges { cursor node { seq ... on Message ${nodeSelection} } } } }`;
    b.definitions.unshift("$id: UUID!", "$size: Int!", "$cursor: String");
  } else {
    const nodes = conversationFields(b, { depth: 0, path: ["Query.conversations"], aliasAll: false });
    const nodeSelection = render(b, nodes.type, nodes.fields);
    selection = `conversations(${page}, filter: $filter) { totalCount ${pageInfo} edges { cursor node { id ... on Conversation ${nodeSelection} } } }`;
    b.definitions.unshift("$size: Int!", "$cursor: String", "$filter: ConversationFilter");
  }
  return { query: operationText(b, `Walk`, [selection]), variables: b.variables };
}
