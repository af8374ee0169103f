/**
 * Assistants: named presets that conversations pin and assistant messages name.
 *
 * Who sees what: members and services see their own assistants and the shared ones (owner null); admins see
 * all. Another user's private assistant answers NOT_FOUND, as an unknown id does. Changes are for the owner and
 * admins; shared assistants are made and changed by admins only (FORBIDDEN for others, who can see them).
 *
 * A change of what an assistant answers with (model, prompt, parameters, tools, knowledge) is a new version,
 * n+1; versions are never updated, so a pin or an attribution keeps meaning what it meant. An assistant that
 * anything points at is retired (setAssistantActive false), not deleted: deleting it would set those pointers
 * to null and lose the record.
 */
import type { Knex } from "knex";
import type { Actor } from "../actor";
import { isAdmin, viewerOf, type Viewer } from "../user/viewer";
import { audit } from "../audit/audit.service";
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from "../../graphql/errors";
import { checkJson, checkText, trimmedText } from "../../graphql/json-input";
import { newestFirstPage, pageRequest, type ConnectionShape } from "../../graphql/connection";
import { assertScopeAccess, KnowledgeScopeKind, scopeOf, type KnowledgeScopeInput, type Scope } from "../knowledge/scope";
import { ArchivedConversationError, getWritableConversation } from "../conversation/conversation.service";
import { Conversation } from "../conversation/conversation.model";
import { ConversationStatus } from "../conversation/conversation.enums";
import { viewerScope } from "../access/access.service";
import { publishConversationChanged } from "../live/live.hub";
import { Assistant, AssistantVersion } from "./assistant.types";
import type { AssistantsArgs, CreateAssistantInput, UpdateAssistantInput } from "./assistant.input";

const MAX_NAME = 200;
const MAX_MODEL = 200;
const MAX_SYSTEM_PROMPT = 100_000;
/** OpenAI's own limit of tools per request. */
const MAX_TOOLS = 128;
/** What OpenAI and Anthropic accept as a function name. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Pinned and attributed rows carry the version's id; the models do not declare the column (it is read with `*`). */
export type WithAssistantVersion = { assistantVersionId?: string | null };

export const mayReadAssistant = (viewer: Viewer, assistant: Pick<Assistant, "ownerId">): boolean =>
  isAdmin(viewer) || assistant.ownerId === null || assistant.ownerId === viewer.id;

const mayChangeAssistant = (viewer: Viewer, assistant: Pick<Assistant, "ownerId">): boolean =>
  isAdmin(viewer) || (assistant.ownerId !== null && assistant.ownerId === viewer.id);

/** The assistant if the viewer may see it, else NOT_FOUND. Inactive ones stay readable: old pins explain themselves. */
export async function getAssistant(ctx: Actor, id: string): Promise<Assistant> {
  const viewer = viewerOf(ctx);
  const assistant = await ctx.loaders.assistantById.load(id);
  if (!assistant || !mayReadAssistant(viewer, assistant)) throw new NotFoundError("Assistant");
  return assistant;
}

async function changeableAssistant(ctx: Actor, id: string): Promise<Assistant> {
  const assistant = await getAssistant(ctx, id);
  if (!mayChangeAssistant(viewerOf(ctx), assistant)) throw new ForbiddenError("Shared assistants are changed by admins; others by their owner");
  return assistant;
}

export async function listAssistants(ctx: Actor, args: AssistantsArgs): Promise<ConnectionShape<Assistant>> {
  const viewer = viewerOf(ctx);
  const page = pageRequest(args, ctx.config);
  const { includeInactive, shared, mine } = args.filter ?? {};
  const filtered = () => {
    const query = Assistant.query(ctx.db.knex);
    if (!isAdmin(viewer)) query.where((q) => q.whereNull("ownerId").orWhere("ownerId", viewer.id));
    if (!includeInactive) query.where("isActive", true);
    if (shared === true) query.whereNull("ownerId");
    if (shared === false) query.whereNotNull("ownerId");
    if (mine) query.where("ownerId", viewer.id);
    return query;
  };
  const connection = await newestFirstPage(filtered, page, "updatedAt", "updated_at");
  for (const { node } of connection.edges) ctx.loaders.assistantById.prime(node.id, node);
  return connection;
}

/** The versions of an assistant, oldest first; NOT_FOUND for a viewer who reached it only through a pin. */
export async function versionsOf(ctx: Actor, assistant: Assistant): Promise<AssistantVersion[]> {
  if (!mayReadAssistant(viewerOf(ctx), assistant)) throw new NotFoundError("Assistant");
  return ctx.loaders.assistantVersionsByAssistantId.load(assistant.id);
}

export async function currentVersionOf(ctx: Actor, assistant: Assistant): Promise<AssistantVersion> {
  const versions = await versionsOf(ctx, assistant);
  return versions.find((version) => version.version === assistant.currentVersion)!;
}

// ---- input checks ----------------------------------------------------------------------------------------

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

function onlyKeys(value: Record<string, unknown>, allowed: string[], field: string): void {
  const extra = Object.keys(value).filter((key) => !allowed.includes(key));
  if (extra.length) throw new BadUserInputError(`${field}: unknown key ${extra.map((key) => `"${key}"`).join(", ")} (allowed: ${allowed.join(", ")})`, { field });
}

/**
 * LLM parameters: a JSON object; the well-known ones in range. Others pass as they are (providers differ),
 * so a typo such as "temprature" is the client's to catch.
 */
export function checkParameters(parameters: unknown): Record<string, unknown> {
  checkJson(parameters, "parameters", "object");
  const value = parameters as Record<string, unknown>;
  const range = (key: string, min: number, max: number, integer = false) => {
    const given = value[key];
    if (given === undefined) return;
    if (typeof given !== "number" || given < min || given > max || (integer && !Number.isInteger(given))) {
      throw new BadUserInputError(`parameters.${key} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}`, { field: `parameters.${key}` });
    }
  };
  range("temperature", 0, 2);
  range("top_p", 0, 1);
  range("topP", 0, 1);
  range("max_tokens", 1, 10_000_000, true);
  range("maxTokens", 1, 10_000_000, true);
  return value;
}

/**
 * A JSON schema that may describe a function's arguments: an object schema. Checked as far as a client's
 * mistake shows (the type, the shapes of properties and required); the model's provider judges the rest.
 */
function checkArgumentsSchema(schema: unknown, field: string): void {
  if (!isObject(schema) || schema.type !== "object") {
    throw new BadUserInputError(`${field} must be a JSON schema object with type "object"`, { field });
  }
  const { properties, required } = schema;
  if (properties !== undefined) {
    if (!isObject(properties)) throw new BadUserInputError(`${field}.properties must be an object of JSON schemas`, { field: `${field}.properties` });
    for (const [name, property] of Object.entries(properties)) {
      if (!isObject(property)) throw new BadUserInputError(`${field}.properties.${name} must be a JSON schema (an object)`, { field: `${field}.properties.${name}` });
    }
  }
  if (required !== undefined) {
    const names = isObject(properties) ? Object.keys(properties) : [];
    if (!Array.isArray(required) || required.some((name) => typeof name !== "string" || !names.includes(name))) {
      throw new BadUserInputError(`${field}.required must list names of its properties`, { field: `${field}.required` });
    }
  }
}

/** OpenAI-style function tools: { type: "function", function: { name, description?, parameters?, strict? } }, names unique. */
export function checkTools(tools: unknown): unknown[] {
  checkJson(tools, "tools", "array");
  const list = tools as unknown[];
  if (list.length > MAX_TOOLS) throw new BadUserInputError(`tools: at most ${MAX_TOOLS}`, { field: "tools" });
  const names = new Set<string>();
  list.forEach((tool, i) => {
    const field = `tools.${i}`;
    if (!isObject(tool) || tool.type !== "function" || !isObject(tool.function)) {
      throw new BadUserInputError(`${field} must be { type: "function", function: { name, description, parameters } }`, { field });
    }
    onlyKeys(tool, ["type", "function"], field);
    const fn = tool.function;
    onlyKeys(fn, ["name", "description", "parameters", "strict"], `${field}.function`);
    if (typeof fn.name !== "string" || !TOOL_NAME.test(fn.name)) {
      throw new BadUserInputError(`${field}.function.name must be 1 to 64 letters, digits, _ or -`, { field: `${field}.function.name` });
    }
    if (names.has(fn.name)) throw new BadUserInputError(`${field}.function.name: "${fn.name}" is defined twice`, { field: `${field}.function.name` });
    names.add(fn.name);
    if (fn.description !== undefined && typeof fn.description !== "string") {
      throw new BadUserInputError(`${field}.function.description must be text`, { field: `${field}.function.description` });
    }
    if (fn.strict !== undefined && typeof fn.strict !== "boolean") {
      throw new BadUserInputError(`${field}.function.strict must be true or false`, { field: `${field}.function.strict` });
    }
    if (fn.parameters !== undefined) checkArgumentsSchema(fn.parameters, `${field}.function.parameters`);
  });
  return list;
}

/** The scope, if the viewer may read it (FORBIDDEN otherwise); a USER scope must name a user who exists. */
async function checkKnowledgeScope(ctx: Actor, input: KnowledgeScopeInput): Promise<Scope> {
  const scope = scopeOf(viewerOf(ctx), input);
  await assertScopeAccess(ctx, scope, "read");
  if (scope.kind === KnowledgeScopeKind.USER && !(await ctx.loaders.userById.load(scope.userId!))) {
    throw new BadUserInputError("knowledgeScope names a user who does not exist", { field: "knowledgeScope.userId" });
  }
  return scope;
}

function checkSystemPrompt(prompt: string): string {
  if ([...prompt].length > MAX_SYSTEM_PROMPT) throw new BadUserInputError(`systemPrompt must be at most ${MAX_SYSTEM_PROMPT} characters`, { field: "systemPrompt" });
  checkText(prompt, "systemPrompt");
  return prompt;
}

function checkDescription(description: string): string {
  checkText(description, "description");
  return description;
}

/** The columns of an assistant_versions row that a version's settings fill. */
interface VersionSettings {
  model: string;
  systemPrompt: string | null;
  parameters: Record<string, unknown>;
  tools: unknown[];
  knowledgeScope: Scope | null;
}

function versionRow(assistantId: string, version: number, settings: VersionSettings, createdBy: string) {
  return {
    assistantId,
    version,
    model: settings.model,
    systemPrompt: settings.systemPrompt,
    parameters: JSON.stringify(settings.parameters),
    tools: JSON.stringify(settings.tools),
    knowledgeScope: settings.knowledgeScope ? JSON.stringify(settings.knowledgeScope) : null,
    createdBy,
  };
}

/** A taken name says which name, rather than formatError's generic duplicate. */
async function nameTaken<T>(name: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const { code, constraint } = error as { code?: string; constraint?: string };
    if (code === "23505" && constraint?.startsWith("assistants_")) throw new ConflictError(`An assistant named "${name}" exists already`);
    throw error;
  }
}

// ---- changes ---------------------------------------------------------------------------------------------

export async function createAssistant(ctx: Actor, input: CreateAssistantInput): Promise<Assistant> {
  const viewer = viewerOf(ctx);
  if (input.shared && !isAdmin(viewer)) throw new ForbiddenError("Shared assistants are made by admins");
  const name = trimmedText(input.name, "name", MAX_NAME);
  const settings: VersionSettings = {
    model: trimmedText(input.model, "model", MAX_MODEL),
    systemPrompt: input.systemPrompt == null ? null : checkSystemPrompt(input.systemPrompt),
    parameters: input.parameters == null ? {} : checkParameters(input.parameters),
    tools: input.tools == null ? [] : checkTools(input.tools),
    // Checked before the transaction: it may load the viewer's grants, and PGlite has one connection.
    knowledgeScope: input.knowledgeScope == null ? null : await checkKnowledgeScope(ctx, input.knowledgeScope),
  };
  const description = input.description == null ? null : checkDescription(input.description);
  const assistant = await nameTaken(name, () =>
    ctx.db.knex.transaction(async (trx) => {
      const [row] = await trx("assistants")
        .insert({ ownerId: input.shared ? null : viewer.id, name, description, createdBy: viewer.id })
        .returning("*");
      await trx("assistant_versions").insert(versionRow(row.id, 1, settings, viewer.id));
      await audit(ctx, { action: "assistant.create", targetType: "assistant", targetId: row.id, details: { name, shared: !!input.shared } }, trx);
      return Assistant.fromDatabaseJson(row);
    }),
  );
  ctx.loaders.assistantById.prime(assistant.id, assistant);
  return assistant;
}

const VERSIONED = ["model", "systemPrompt", "parameters", "tools", "knowledgeScope"] as const;

export async function updateAssistant(ctx: Actor, id: string, input: UpdateAssistantInput): Promise<Assistant> {
  const viewer = viewerOf(ctx);
  const current = await changeableAssistant(ctx, id);
  const patch: Partial<Pick<Assistant, "name" | "description">> = {};
  if (input.name != null) patch.name = trimmedText(input.name, "name", MAX_NAME);
  if (input.description !== undefined) patch.description = input.description === null ? null : checkDescription(input.description);
  // undefined: not given, keep; null: clear (systemPrompt, knowledgeScope) or keep (model, parameters, tools, which cannot be empty).
  const changes: Partial<VersionSettings> = {};
  if (input.model != null) changes.model = trimmedText(input.model, "model", MAX_MODEL);
  if (input.systemPrompt !== undefined) changes.systemPrompt = input.systemPrompt === null ? null : checkSystemPrompt(input.systemPrompt);
  if (input.parameters != null) changes.parameters = checkParameters(input.parameters);
  if (input.tools != null) changes.tools = checkTools(input.tools);
  if (input.knowledgeScope !== undefined) changes.knowledgeScope = input.knowledgeScope === null ? null : await checkKnowledgeScope(ctx, input.knowledgeScope);
  const newVersion = VERSIONED.some((key) => key in changes);
  if (!newVersion && Object.keys(patch).length === 0) {
    throw new BadUserInputError("Nothing to update: pass name, description, model, systemPrompt, parameters, tools or knowledgeScope");
  }
  const updated = await nameTaken(patch.name ?? current.name, () =>
    ctx.db.knex.transaction(async (trx) => {
      // The row lock orders concurrent changes, so each gets its own version number.
      const locked: { currentVersion: number } | undefined = await trx("assistants").where({ id }).forUpdate().first("currentVersion");
      if (!locked) throw new NotFoundError("Assistant");
      const row: Record<string, unknown> = { ...patch };
      if (newVersion) {
        const previous = await AssistantVersion.query(trx).findOne({ assistantId: id, version: locked.currentVersion });
        const settings: VersionSettings = {
          model: previous!.model,
          systemPrompt: previous!.systemPrompt,
          parameters: previous!.parameters,
          tools: previous!.tools,
          knowledgeScope: previous!.knowledgeScope as Scope | null,
          ...changes,
        };
        row.currentVersion = locked.currentVersion + 1;
        await trx("assistant_versions").insert(versionRow(id, locked.currentVersion + 1, settings, viewer.id));
      }
      const [saved] = await trx("assistants").where({ id }).update(row).returning("*");
      const details = { changed: [...Object.keys(patch), ...Object.keys(changes)], version: saved.currentVersion };
      await audit(ctx, { action: "assistant.update", targetType: "assistant", targetId: id, details }, trx);
      return Assistant.fromDatabaseJson(saved);
    }),
  );
  ctx.loaders.assistantById.clear(id).prime(id, updated);
  ctx.loaders.assistantVersionsByAssistantId.clear(id);
  return updated;
}

/** Idempotent. An inactive assistant cannot be pinned; what already pinned or named it keeps doing so. */
export async function setAssistantActive(ctx: Actor, id: string, active: boolean): Promise<Assistant> {
  const current = await changeableAssistant(ctx, id);
  if (current.isActive === active) return current;
  const updated = await ctx.db.knex.transaction(async (trx) => {
    const [row] = await trx("assistants").where({ id }).update({ isActive: active }).returning("*");
    if (!row) throw new NotFoundError("Assistant");
    await audit(ctx, { action: active ? "assistant.activate" : "assistant.deactivate", targetType: "assistant", targetId: id }, trx);
    return Assistant.fromDatabaseJson(row);
  });
  ctx.loaders.assistantById.clear(id).prime(id, updated);
  return updated;
}

class AssistantInUseError extends ConflictError {
  constructor() {
    super("A conversation or message points at a version of this assistant: deactivate it (setAssistantActive) instead of deleting it");
    this.extensions.reason = "ASSISTANT_IN_USE";
  }
}

class AssistantInactiveError extends ConflictError {
  constructor() {
    super("This assistant is inactive: it cannot be pinned (setAssistantActive true first)");
    this.extensions.reason = "ASSISTANT_INACTIVE";
  }
}

/** Deletes an assistant that nothing points at; CONFLICT (ASSISTANT_IN_USE) otherwise. */
export async function deleteAssistant(ctx: Actor, id: string): Promise<boolean> {
  const current = await changeableAssistant(ctx, id);
  await ctx.db.knex.transaction(async (trx) => {
    // Pinning takes this row's lock too (FOR SHARE), so no pin can slip in between the check and the delete.
    if (!(await trx("assistants").where({ id }).forUpdate().first("id"))) throw new NotFoundError("Assistant");
    const versions = trx("assistant_versions").where({ assistantId: id }).select("id");
    const { rows } = await trx.raw("select exists (?) or exists (?) as used", [
      trx("conversations").whereIn("assistant_version_id", versions.clone()).select(trx.raw("1")),
      trx("messages").whereIn("assistant_version_id", versions.clone()).select(trx.raw("1")),
    ]);
    if (rows[0].used) throw new AssistantInUseError();
    await trx("assistants").where({ id }).delete().returning("id");
    await audit(ctx, { action: "assistant.delete", targetType: "assistant", targetId: id, details: { name: current.name, ownerId: current.ownerId } }, trx);
  });
  ctx.loaders.assistantById.clear(id);
  ctx.loaders.assistantVersionsByAssistantId.clear(id);
  return true;
}

// ---- pins and attribution --------------------------------------------------------------------------------

/** After a committed change of the conversation row: loaders and the owner's inbox streams. */
async function changedConversation(ctx: Actor, row: Record<string, unknown>): Promise<Conversation> {
  const conversation = Conversation.fromDatabaseJson(row);
  await publishConversationChanged(ctx.db.knex, conversation.id, conversation.ownerId);
  ctx.loaders.conversationById.clear(conversation.id).prime(conversation.id, conversation);
  return conversation;
}

/** Sets (or clears) the pin while the conversation is active and the viewer's: the condition closes the race with an archive. */
async function setPin(trx: Knex, scope: (query: Knex.QueryBuilder) => void, conversationId: string, versionId: string | null): Promise<Record<string, unknown>> {
  const [row] = await trx("conversations")
    .where({ id: conversationId, status: ConversationStatus.ACTIVE })
    .modify(scope)
    .update({ assistantVersionId: versionId })
    .returning("*");
  if (!row) throw new ArchivedConversationError(); // it was readable and active a moment ago
  return row;
}

/**
 * Pins a version of an assistant (its current one by default) to a conversation the viewer may write. The
 * assistant must be active and one the viewer sees; a private one only goes to its owner's conversations (or
 * its owner pins it, e.g. a service its own assistant in a conversation it serves).
 */
export async function pinAssistant(ctx: Actor, conversationId: string, assistantId: string, version?: number | null): Promise<Conversation> {
  const viewer = viewerOf(ctx);
  const conversation = await getWritableConversation(ctx, conversationId);
  const assistant = await getAssistant(ctx, assistantId);
  if (assistant.ownerId !== null && assistant.ownerId !== conversation.ownerId && assistant.ownerId !== viewer.id) {
    throw new ForbiddenError("A private assistant is pinned only to its owner's conversations, or by its owner");
  }
  if (version != null && version < 1) throw new BadUserInputError("version must be 1 or more", { field: "version" });
  const scope = await viewerScope(ctx); // before the transaction (PGlite has one connection)
  const row = await ctx.db.knex.transaction(async (trx) => {
    // FOR SHARE: deleteAssistant, which locks the row FOR UPDATE, waits for this pin and then sees it.
    const locked: { isActive: boolean; currentVersion: number } | undefined = await trx("assistants")
      .where({ id: assistantId })
      .forShare()
      .first("isActive", "currentVersion");
    if (!locked) throw new NotFoundError("Assistant");
    if (!locked.isActive) throw new AssistantInactiveError();
    const wanted = version ?? locked.currentVersion;
    const found: { id: string } | undefined = await trx("assistant_versions").where({ assistantId, version: wanted }).first("id");
    if (!found) {
      throw new BadUserInputError(`This assistant has versions 1 to ${locked.currentVersion}, not ${wanted}`, { field: "version", currentVersion: locked.currentVersion });
    }
    const updated = await setPin(trx, scope, conversationId, found.id);
    await audit(ctx, { action: "conversation.pin_assistant", targetType: "conversation", targetId: conversationId, details: { assistantId, version: wanted } }, trx);
    return updated;
  });
  return changedConversation(ctx, row);
}

/** Idempotent: a conversation without a pin stays without one. */
export async function unpinAssistant(ctx: Actor, conversationId: string): Promise<Conversation> {
  await getWritableConversation(ctx, conversationId);
  const scope = await viewerScope(ctx);
  const row = await ctx.db.knex.transaction(async (trx) => {
    const updated = await setPin(trx, scope, conversationId, null);
    await audit(ctx, { action: "conversation.unpin_assistant", targetType: "conversation", targetId: conversationId }, trx);
    return updated;
  });
  return changedConversation(ctx, row);
}

/** The version a conversation or message names, for its `assistant` field (no access check: its reader may know it). */
export async function versionOf(ctx: Actor, row: WithAssistantVersion): Promise<AssistantVersion | null> {
  return row.assistantVersionId ? ((await ctx.loaders.assistantVersionById.load(row.assistantVersionId)) ?? null) : null;
}

/**
 * May the viewer name this version as the writer of an assistant message in the conversation? When it sees
 * the assistant, or when it is the conversation's pin (a worker answering in a member's conversation pinned to
 * the member's own assistant). NOT_FOUND otherwise, as for an unknown id.
 */
export async function assertMayAttribute(ctx: Actor, conversationId: string, versionId: string): Promise<void> {
  const version = await ctx.loaders.assistantVersionById.load(versionId);
  const assistant = version && (await ctx.loaders.assistantById.load(version.assistantId)); // primed by the line above
  if (assistant && mayReadAssistant(viewerOf(ctx), assistant)) return;
  const conversation = version && ((await ctx.loaders.conversationById.load(conversationId)) as (Conversation & WithAssistantVersion) | undefined);
  if (conversation?.assistantVersionId === versionId) return;
  throw new NotFoundError("Assistant version");
}
