import type { Knex } from "knex";

/**
 * One statement's text and bindings, written in order. Table aliases are numbered per statement, so the same
 * selection always gives the same text (prepared statements are keyed by it, see db/prepared.ts).
 */
export class SqlText {
  private readonly parts: string[] = [];
  readonly bindings: Knex.RawBinding[] = [];
  private aliases = 0;

  text(sql: string): this {
    this.parts.push(sql);
    return this;
  }

  /** A placeholder for `value` (knex's `?`), with an optional cast such as `::uuid`. */
  bind(value: Knex.RawBinding, cast = ""): this {
    this.bindings.push(value);
    this.parts.push(`?${cast}`);
    return this;
  }

  /** SQL text with `?` placeholders of its own and their bindings, in order. */
  append(sql: string, bindings: readonly Knex.RawBinding[]): this {
    this.parts.push(sql);
    this.bindings.push(...bindings);
    return this;
  }

  /** A table alias not used elsewhere in this statement. */
  alias(): string {
    this.aliases += 1;
    return `t${this.aliases}`;
  }

  toString(): string {
    return this.parts.join("");
  }
}
