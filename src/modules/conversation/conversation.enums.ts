import { registerEnumType } from "type-graphql";

export enum ConversationStatus {
  ACTIVE = "active",
  ARCHIVED = "archived",
}
registerEnumType(ConversationStatus, {
  name: "ConversationStatus",
  description: "ARCHIVED conversations can be read but not written",
});

export enum ConversationOrigin {
  WEB = "web",
  DISCORD = "discord",
  API = "api",
}
registerEnumType(ConversationOrigin, { name: "ConversationOrigin" });
