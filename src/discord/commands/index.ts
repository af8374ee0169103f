/**
 * `/parley` and its subcommands: the definition registered with Discord (discord:register) and the handlers.
 */
import { InteractionContextType, SlashCommandBuilder } from "discord.js";
import type { Subcommand } from "./command";
import { start } from "./start";
import { stop } from "./stop";
import { status } from "./status";
import { history } from "./history";
import { transcript } from "./transcript";
import { usage } from "./usage";
import { search } from "./search";

export const SUBCOMMANDS: readonly Subcommand[] = [start, stop, status, history, transcript, usage, search];

export const COMMAND_NAME = "parley";

export function parleyCommand(): SlashCommandBuilder {
  const command = new SlashCommandBuilder()
    .setName(COMMAND_NAME)
    .setDescription("Record this channel into Parley")
    // Channels of a server only: a DM has no channel to bind, nor permissions to check.
    .setContexts(InteractionContextType.Guild);
  for (const sub of SUBCOMMANDS) command.addSubcommand((builder) => sub.define(builder));
  return command;
}
