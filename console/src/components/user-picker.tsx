/**
 * People picked by name. A search box narrows a select to the first PICKER_SIZE users whose name or email
 * holds what was typed (the users query's `search`), so a picker costs one request of PICKER_SIZE rows
 * whether the deployment has ten users or a hundred thousand. The chosen person stays listed while the
 * search changes, and the picker says how many more matched than it shows.
 */
import { useState } from "preact/hooks";
import { describeError } from "../api";
import { gql } from "../client";
import { USERS, type Connection, type PersonRef, type UserRow } from "../queries";
import type { Role } from "../session";
import { useTypedSearch } from "../typing";

/** Matches shown at once: enough to pick from by eye, few enough that typing is the way to the rest. */
export const PICKER_SIZE = 20;

/** A person as an <option>'s text: the name, with the email when there is one (names need not be unique). */
export function personOption(person: PersonRef): string {
  return person.email ? `${person.displayName} (${person.email})` : person.displayName;
}

const byName = (a: UserRow, b: UserRow) => a.displayName.localeCompare(b.displayName);

interface Props {
  /** The select's accessible name ("Actor", "Service"); the search box is "Find <label>". */
  label: string;
  /** Only users of this role. */
  role?: Role;
  /** The chosen user's id, "" for none. */
  value: string;
  onChange: (id: string) => void;
  /**
   * The text of the choice of no one ("anyone"). Without it there is always a choice: the first match is
   * picked until the user picks another (a form that needs someone, like a grant's service).
   */
  none?: string;
}

export function UserPicker({ label, role, value, onChange, none }: Props) {
  const [search, setSearch] = useState("");
  const [found, setFound] = useState<{ users: UserRow[]; more: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [chosen, setChosen] = useState<UserRow | null>(null);

  const pick = (user: UserRow | null) => {
    setChosen(user);
    onChange(user?.id ?? "");
  };

  const text = search.trim();
  useTypedSearch(
    text,
    async (isLive) => {
      try {
        const filter = { ...(role ? { role } : {}), ...(text ? { search: text } : {}) };
        const { users } = await gql<{ users: Connection<UserRow> & { totalCount: number } }>(USERS, { first: PICKER_SIZE, after: null, filter });
        if (!isLive()) return;
        const matches = users.edges.map((edge) => edge.node).sort(byName);
        setFound({ users: matches, more: users.totalCount - matches.length });
        setError(null);
        if (none === undefined && !value && matches[0]) pick(matches[0]);
      } catch (failure) {
        if (isLive()) setError(describeError(failure));
      }
    },
    [role],
  );

  // What the form holds may have been set from outside (cleared after a submit): keep the two in step.
  const current = chosen && chosen.id === value ? chosen : null;
  const listed = found?.users ?? [];
  const options = current && !listed.some((user) => user.id === current.id) ? [current, ...listed] : listed;
  const noun = label.toLowerCase();

  return (
    <div class="field user-picker">
      <span>{label}</span>
      <input
        class="input"
        type="search"
        aria-label={`Find ${noun}`}
        placeholder="Type a name or email"
        value={search}
        onInput={(event) => setSearch(event.currentTarget.value)}
      />
      <select class="input" aria-label={label} value={value} onChange={(event) => pick(options.find((user) => user.id === event.currentTarget.value) ?? null)}>
        {none !== undefined && <option value="">{none}</option>}
        {none === undefined && !options.length && <option value="">{found ? `no ${noun} found` : "loading…"}</option>}
        {options.map((user) => (
          <option key={user.id} value={user.id}>{personOption(user)}</option>
        ))}
      </select>
      {error && <small class="error" role="alert">{error}</small>}
      {!!found?.more && <small class="subtle" data-testid="picker-more">{found.more} more: type to narrow</small>}
    </div>
  );
}
