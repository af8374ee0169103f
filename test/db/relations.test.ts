import { Conversation } from "../../src/modules/conversation/conversation.model";
import { Message } from "../../src/modules/message/message.model";
import { User } from "../../src/modules/user/user.model";
import { createTestDatabase, type TestDatabase } from "../helpers/db";

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.dispose());

describe("Objection relation mappings", () => {
  it("navigate owner, messages, conversation and author", async () => {
    const knex = database.db.knex;
    const owner = await User.query(knex).insertAndFetch({ displayName: "owner" });
    const conversation = await Conversation.query(knex).insertAndFetch({ ownerId: owner.id, title: "t", lastSeq: 2, messageCount: 2 });
    await Message.query(knex).insert([
      { conversationId: conversation.id, seq: 1, role: "user", content: "hi", authorId: owner.id },
      { conversationId: conversation.id, seq: 2, role: "assistant", content: "hello" },
    ] as Partial<Message>[]);

    const loaded = await Conversation.query(knex).findById(conversation.id).withGraphFetched("[owner, messages(bySeq).author]")
      .modifiers({ bySeq: (q) => q.orderBy("seq") });
    expect(loaded!.$toJson()).toMatchObject({
      owner: { id: owner.id },
      messages: [{ seq: 1, author: { id: owner.id } }, { seq: 2, author: null }],
    });
    const [first] = await conversation.$relatedQuery("messages", knex).where("seq", 1);
    expect(await first.$relatedQuery("conversation", knex)).toMatchObject({ id: conversation.id });
  });
});
