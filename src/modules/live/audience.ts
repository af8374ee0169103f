/**
 * Which subscribers of a conversation may share one execution of their subscription: those who sent the same
 * document with the same variables (afterSeq and streamingSeqs aside: they only say where to start) and for
 * whom every field asked resolves the same. Access to the conversation itself is checked per subscriber; what
 * is decided here is whether the ANSWER can differ between two viewers who both may read it.
 *
 * Fields are listed as shared on purpose, not as personal: a field added later that nobody listed makes its
 * subscriptions personal (one group per viewer), which costs sharing, never correctness.
 */
import { getNamedType, isObjectType, Kind, type DocumentNode, type GraphQLNamedType, type GraphQLSchema, type SelectionSetNode, type ValueNode, type DirectiveNode, type ArgumentNode } from "graphql";
import type { Actor } from "../actor";
import { mayActFor } from "../access/access.service";
import { ConversationOrigin } from "../conversation/conversation.enums";
import { viewerOf } from "../user/viewer";

/**
 * Fields whose value is the same for every viewer who may see their parent. The rest of User (email, external
 * ids, preferences, activity) is shown to the user and admins only; myFeedback is the viewer's own; artifacts,
 * transcripts and assistants are not listed because nothing here needs them shared.
 */
const SHARED: Readonly<Record<string, readonly string[]>> = {
  Message: [
    "id", "seq", "role", "status", "requestId", "metadata", "toolCalls", "model", "promptTokens", "completionTokens",
    "costUsd", "latencyMs", "createdAt", "updatedAt", "content", "chunkCount", "author", "sentBy", "conversation",
  ],
  User: ["id", "displayName", "role", "isActive", "createdAt", "updatedAt"],
  Conversation: [
    "id", "title", "origin", "status", "parameters", "createdAt", "updatedAt", "endedAt", "discordChannelId",
    "discordGuildId", "messageCount", "lastMessage", "owner", "messages",
  ],
  MessageConnection: ["edges", "pageInfo", "totalCount"],
  MessageEdge: ["cursor", "node"],
  PageInfo: ["startCursor", "endCursor", "hasNextPage", "hasPreviousPage"],
  MessageAddedEvent: ["message"],
  MessageUpdatedEvent: ["message"],
  MessageDeltaEvent: ["messageId", "seq", "index", "text"],
  DiscordPost: ["channelId", "discordMessageIds", "status", "error", "updatedAt"],
};

/** Fields shown to admins and services granted the DISCORD origin (the adapter), null to everyone else. */
const DISCORD = new Set(["Message.discordPost"]);

/** Root arguments that only say where a stream starts: subscribers differing in them still share an answer. */
const START_ARGUMENTS = new Set(["afterSeq", "streamingSeqs"]);

export interface Shape {
  /** The variables the answer depends on, by name, sorted. */
  variables: string[];
  /** A field whose value depends on who asks is selected: one group per viewer. */
  personal: boolean;
  /** Message.discordPost is selected: viewers who may and may not see it are apart. */
  discord: boolean;
}

const shapes = new WeakMap<DocumentNode, Map<string, Shape>>();

/** What the subscription's answer depends on besides the event (remembered per parsed document). */
export function shapeOf(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined): Shape {
  let byName = shapes.get(document);
  if (!byName) shapes.set(document, (byName = new Map()));
  const known = byName.get(operationName ?? "");
  if (known) return known;
  const shape = analyse(schema, document, operationName);
  byName.set(operationName ?? "", shape);
  return shape;
}

function analyse(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined): Shape {
  const operations = document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  const operation = operations.find((definition) => (operationName ? definition.name?.value === operationName : true));
  const fragments = new Map(document.definitions.flatMap((definition) => (definition.kind === Kind.FRAGMENT_DEFINITION ? [[definition.name.value, definition] as const] : [])));
  const variables = new Set<string>();
  const shape: Shape = { variables: [], personal: false, discord: false };
  const walked = new Set<string>();

  const value = (node: ValueNode): void => {
    if (node.kind === Kind.VARIABLE) variables.add(node.name.value);
    else if (node.kind === Kind.LIST) node.values.forEach(value);
    else if (node.kind === Kind.OBJECT) node.fields.forEach((field) => value(field.value));
  };
  const uses = (nodes: readonly (ArgumentNode | DirectiveNode)[] | undefined, skip?: Set<string>): void => {
    for (const node of nodes ?? []) {
      if (node.kind === Kind.DIRECTIVE) uses(node.arguments);
      else if (!skip?.has(node.name.value)) value(node.value);
    }
  };
  const walk = (type: GraphQLNamedType | undefined, set: SelectionSetNode, root: boolean): void => {
    for (const selection of set.selections) {
      uses(selection.directives);
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type, selection.selectionSet, root);
      } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || walked.has(fragment.name.value)) continue;
        walked.add(fragment.name.value);
        uses(fragment.directives);
        walk(schema.getType(fragment.typeCondition.name.value), fragment.selectionSet, root);
      } else if (selection.name.value !== "__typename") {
        const field = isObjectType(type) ? type.getFields()[selection.name.value] : undefined;
        const coordinate = `${type?.name}.${selection.name.value}`;
        uses(selection.arguments, root ? START_ARGUMENTS : undefined);
        if (!field) shape.personal = true; // not an object's field: nothing is known of it
        else if (DISCORD.has(coordinate)) shape.discord = true;
        else if (!root && !SHARED[type!.name]?.includes(field.name)) shape.personal = true;
        if (field && selection.selectionSet) walk(getNamedType(field.type), selection.selectionSet, false);
      }
    }
  };
  if (!operation) return { ...shape, personal: true };
  walk(schema.getSubscriptionType() ?? undefined, operation.selectionSet, true);
  shape.variables = [...variables].sort();
  return shape;
}

/**
 * Who, for this shape, sees what `ctx`'s viewer sees: the role always (it decides fields' visibility), whether
 * the viewer may act for Discord when discordPost is asked, and the viewer itself when a personal field is.
 */
export async function audienceOf(ctx: Actor, shape: Shape): Promise<string> {
  const viewer = viewerOf(ctx);
  let audience: string = viewer.role;
  if (shape.discord && (await mayActFor(ctx, ConversationOrigin.DISCORD))) audience += "+discord";
  if (shape.personal) audience += `:${viewer.id}`;
  return audience;
}

/** The part of the variables the answer depends on, as text (for grouping). */
export function keyVariables(shape: Shape, variables: Readonly<Record<string, unknown>> | null | undefined): string {
  // [value] or [] when absent: an absent variable takes its default, an explicit null does not.
  return JSON.stringify(shape.variables.map((name) => (variables && name in variables ? [variables[name]] : [])));
}
