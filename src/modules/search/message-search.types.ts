import { Field, Float, ObjectType } from "type-graphql";
import { Message } from "../message/message.model";

@ObjectType({ description: "A message that matches a searchMessages query" })
export class MessageSearchHit {
  @Field(() => Float, { description: "Relevance (ts_rank_cd): higher is better; comparable only within one search" })
  rank: number;

  @Field(() => String, {
    description:
      "Up to two short fragments of the text around the matches, joined by ' … ', with the matched words in <b>…</b>. " +
      "The text is HTML-escaped (&amp; &lt; &gt;), so the <b> markers are the only markup",
  })
  highlight: string;

  @Field(() => Message)
  message: Message;
}
