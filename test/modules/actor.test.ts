/**
 * Services called without GraphQL, as the CLI, background jobs and the Discord process call them: an actor made
 * with actorFor gets the same rules as a request (ownership, isolation, no viewer → UNAUTHENTICATED).
 */
import { actorFor, type ActorDeps } from "../../src/modules/actor";
import { createConversation, getConversation, listConversations } from "../../src/modules/conversation/conversation.service";
import { addMessage } from "../../src/modules/message/message.service";
import { Role } from "../../src/modules/user/role.enum";
import { ConversationOrigin } from "../../src/modules/conversation/conversation.enums";
import { User } from "../../src/modules/user/user.model";
import { createLogger } from "../../src/logger";
import { createTestDatabase, type TestDatabase } from "../helpers/db";

let database: TestDatabase;
let deps: ActorDeps;
beforeAll(async () => {
  database = await createTestDatabase();
  deps = { db: database.db, config: database.config, log: createLogger({ logLevel: "silent" }) };
});
afterAll(() => database.dispose());

async function member(name: string) {
  const user = await User.query(database.db.knex).insertAndFetch({ displayName: name, role: Role.MEMBER });
  return actorFor(deps, { id: user.id, role: Role.MEMBER, displayName: name });
}

describe("services with an actor made outside GraphQL", () => {
  it("apply the same rules as a request: the owner reads and writes, another member gets NOT_FOUND", async () => {
    const alice = await member("alice");
    const bob = await member("bob");
    const conversation = await createConversation(alice, { title: "from a job", origin: ConversationOrigin.API });
    expect(conversation.ownerId).toBe(alice.viewer!.id);
    expect((await addMessage(alice, { conversationId: conversation.id, content: "hello" })).seq).toBe(1);
    expect((await getConversation(alice, conversation.id)).messageCount).toBe(1);
    expect((await listConversations(alice, {})).edges.map((edge) => edge.node.id)).toEqual([conversation.id]);

    await expect(getConversation(bob, conversation.id)).rejects.toMatchObject({ extensions: { code: "NOT_FOUND" } });
    await expect(addMessage(bob, { conversationId: conversation.id, content: "intrusion" })).rejects.toMatchObject({ extensions: { code: "NOT_FOUND" } });
    expect((await listConversations(bob, {})).edges).toEqual([]);
  });

  it("refuses an actor without a viewer with UNAUTHENTICATED", async () => {
    await expect(createConversation(actorFor(deps, null), { title: "nobody", origin: ConversationOrigin.API })).rejects.toMatchObject({ extensions: { code: "UNAUTHENTICATED" } });
  });
});
