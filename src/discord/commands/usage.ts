import { USAGE } from "../operations";
import { whisper, type Subcommand } from "./command";

interface Standing {
  spentUsd: number;
  percent: number;
  resetsAt: string;
  budget: { limitUsd: number; period: string };
}
interface UsageData {
  mine: Standing | null;
  guild: Standing | null;
  usage: { requests: number; costUsd: number }[];
}

const usd = (amount: number) => `$${amount.toFixed(amount < 1 ? 4 : 2)}`;
/** Discord renders <t:seconds:R> as a relative time in the reader's own time zone. */
const when = (iso: string) => `<t:${Math.floor(new Date(iso).getTime() / 1000)}:R>`;
const standing = (who: string, s: Standing) =>
  `${who} ${s.budget.period.toLowerCase()} budget: ${usd(s.spentUsd)} of ${usd(s.budget.limitUsd)} spent (${s.percent}%), resets ${when(s.resetsAt)}.`;

export const usage: Subcommand = {
  name: "usage",
  define: (sub) => sub.setName("usage").setDescription("Show what your AI use cost this period, and this server's budget"),

  async execute(ctx) {
    const now = new Date();
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const data = await ctx.transport.run<UsageData>(USAGE, { userId: await ctx.actor(), guildId: ctx.interaction.guildId, from, to });
    const [month] = data.usage;
    const lines = [
      data.mine
        ? standing("Your", data.mine)
        : `You used AI ${month?.requests ?? 0} times this month (UTC), for ${usd(month?.costUsd ?? 0)}.`,
      ...(data.guild ? [standing("This server's", data.guild)] : []),
    ];
    await whisper(ctx, lines.join("\n"));
  },
};
