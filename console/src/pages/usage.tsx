/**
 * Usage: the spend and calls of the usage ledger by day (stacked by model), tokens, error rate, a summary
 * table per model, budget gauges (a member's own; for admins every budget), and (admins) the open alerts,
 * kept live by alertRaised, with acknowledge and resolve. Members see their own usage; admins everyone's (the
 * server decides, as for any client).
 */
import { useEffect, useState } from "preact/hooks";
import { describeError } from "../api";
import { gql, subscribe } from "../client";
import { Chart } from "../components/chart";
import { DataTable } from "../components/data-table";
import { count, fullDate, usd } from "../format";
import { ACKNOWLEDGE_ALERT, ALERT_RAISED, ALERTS, BUDGETS, MY_BUDGET, RESOLVE_ALERT, USAGE, type Alert, type BudgetState, type Connection, type UsageBucket } from "../queries";
import type { Viewer } from "../session";

const DAY = 86_400_000;
const RANGES = [7, 14, 30, 90] as const;
/** Colours of the models in the charts, in turn (styles.css defines them for both themes). */
const PALETTE = ["--chart-1", "--chart-2", "--chart-3", "--chart-4", "--chart-5", "--chart-6"];
/** At most this many models get a colour of their own; the rest are summed as "other". */
const MAX_MODELS = PALETTE.length - 1;

export interface ModelTotals {
  model: string;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/** Sums buckets (of one day and model each) per model, most expensive first. */
export function totalsByModel(buckets: UsageBucket[]): ModelTotals[] {
  const totals = new Map<string, ModelTotals>();
  for (const bucket of buckets) {
    const model = bucket.model ?? "unknown";
    const row = totals.get(model) ?? { model, requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 };
    row.requests += bucket.requests;
    row.errors += bucket.errors;
    row.promptTokens += bucket.promptTokens;
    row.completionTokens += bucket.completionTokens;
    row.costUsd += bucket.costUsd;
    totals.set(model, row);
  }
  return [...totals.values()].sort((a, b) => b.costUsd - a.costUsd || a.model.localeCompare(b.model));
}

function startOfUtcDay(time: number): number {
  return Math.floor(time / DAY) * DAY;
}

const percent = (value: number) => `${value.toFixed(value > 0 && value < 10 ? 1 : 0)}%`;
const compact = (value: number) => (value >= 1_000_000 ? `${(value / 1_000_000).toFixed(1)}M` : value >= 1_000 ? `${(value / 1_000).toFixed(1)}k` : String(Math.round(value)));
const dollars = (value: number) => (value >= 100 ? `$${value.toFixed(0)}` : `$${value.toFixed(2)}`);

export function UsagePage({ viewer }: { viewer: Viewer }) {
  const [days, setDays] = useState<number>(14);
  const [state, setState] = useState<{ name: "loading" } | { name: "ready"; buckets: UsageBucket[]; from: number; to: number } | { name: "error"; message: string }>({ name: "loading" });

  useEffect(() => {
    document.title = "Usage · Parley Console";
  }, []);

  useEffect(() => {
    let active = true;
    const to = startOfUtcDay(Date.now()) + DAY;
    const from = to - days * DAY;
    setState({ name: "loading" });
    gql<{ usage: UsageBucket[] }>(USAGE, { filter: { from: new Date(from).toISOString(), to: new Date(to).toISOString() }, groupBy: ["MODEL"] })
      .then(({ usage }) => active && setState({ name: "ready", buckets: usage, from, to }))
      .catch((error) => active && setState({ name: "error", message: describeError(error) }));
    return () => {
      active = false;
    };
  }, [days]);

  return (
    <div class="page" data-testid="usage-page">
      <header class="page-head">
        <h1>Usage</h1>
        <label class="field inline">
          <span>Period</span>
          <select class="input" aria-label="Period" value={String(days)} onChange={(event) => setDays(Number(event.currentTarget.value))} data-testid="usage-range">
            {RANGES.map((range) => (
              <option key={range} value={String(range)}>Last {range} days</option>
            ))}
          </select>
        </label>
      </header>
      {viewer.role === "ADMIN" && <AlertsPanel />}
      <Budgets viewer={viewer} />
      {state.name === "loading" && <p class="subtle" role="status">Loading usage…</p>}
      {state.name === "error" && <p class="error" role="alert">{state.message}</p>}
      {state.name === "ready" && <UsageCharts buckets={state.buckets} from={state.from} to={state.to} />}
    </div>
  );
}

function UsageCharts({ buckets, from, to }: { buckets: UsageBucket[]; from: number; to: number }) {
  const totals = totalsByModel(buckets);
  if (!totals.length) return <p class="empty-panel" data-testid="usage-empty">No model calls in this period.</p>;

  const dayIndex = new Map<number, number>();
  const x: number[] = [];
  for (let day = from; day < to; day += DAY) {
    dayIndex.set(day, x.length);
    x.push(day / 1000);
  }
  const zeros = () => x.map(() => 0);
  const named = totals.slice(0, MAX_MODELS).map((row) => row.model);
  const costByModel = new Map<string, number[]>([...named, ...(totals.length > MAX_MODELS ? ["other"] : [])].map((model) => [model, zeros()]));
  const prompt = zeros();
  const completion = zeros();
  const requests = zeros();
  const errors = zeros();
  for (const bucket of buckets) {
    const at = dayIndex.get(startOfUtcDay(Date.parse(bucket.periodStart)));
    if (at === undefined) continue;
    const model = named.includes(bucket.model ?? "unknown") ? (bucket.model ?? "unknown") : "other";
    costByModel.get(model)![at] += bucket.costUsd;
    prompt[at] += bucket.promptTokens;
    completion[at] += bucket.completionTokens;
    requests[at] += bucket.requests;
    errors[at] += bucket.errors;
  }
  const errorRate = requests.map((calls, at) => (calls ? (100 * errors[at]) / calls : null));
  const all = totals.reduce(
    (sum, row) => ({ requests: sum.requests + row.requests, errors: sum.errors + row.errors, promptTokens: sum.promptTokens + row.promptTokens, completionTokens: sum.completionTokens + row.completionTokens, costUsd: sum.costUsd + row.costUsd }),
    { requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 },
  );

  return (
    <>
      <section class="stat-row" aria-label="Totals">
        <Stat label="Cost" value={usd(all.costUsd)} testId="total-cost" />
        <Stat label="Calls" value={count(all.requests)} testId="total-requests" />
        <Stat label="Tokens" value={count(all.promptTokens + all.completionTokens)} testId="total-tokens" />
        <Stat label="Error rate" value={all.requests ? percent((100 * all.errors) / all.requests) : "–"} testId="total-error-rate" />
      </section>
      <div class="charts">
        <Chart
          title="Cost per day by model"
          kind="stacked-bars"
          x={x}
          series={[...costByModel.entries()].map(([model, values], index) => ({ label: model, values, color: PALETTE[model === "other" ? PALETTE.length - 1 : index] }))}
          format={dollars}
        />
        <Chart
          title="Tokens per day"
          kind="lines"
          x={x}
          series={[
            { label: "prompt", values: prompt, color: "--chart-1" },
            { label: "completion", values: completion, color: "--chart-2" },
          ]}
          format={compact}
        />
        <Chart title="Error rate per day" kind="lines" x={x} series={[{ label: "errors", values: errorRate, color: "--danger" }]} format={percent} />
      </div>
      <DataTable
        testId="usage-table"
        caption="By model"
        rows={totals}
        rowKey={(row) => row.model}
        rowData={(row) => ({ "data-model": row.model })}
        columns={[
          { label: "Model", cell: (row) => row.model },
          { label: "Calls", name: "requests", numeric: true, cell: (row) => count(row.requests) },
          { label: "Prompt tokens", name: "promptTokens", numeric: true, cell: (row) => count(row.promptTokens) },
          { label: "Completion tokens", name: "completionTokens", numeric: true, cell: (row) => count(row.completionTokens) },
          { label: "Cost", name: "costUsd", numeric: true, cell: (row) => usd(row.costUsd) },
          { label: "Errors", name: "errors", numeric: true, cell: (row) => count(row.errors) },
        ]}
      />
    </>
  );
}

function Stat({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div class="stat">
      <span class="stat-label">{label}</span>
      <span class="stat-value" data-testid={testId}>{value}</span>
    </div>
  );
}

/** Budgets per page of BUDGETS (admins). */
const BUDGET_PAGE = 24;

interface Gauge {
  label: string;
  status: BudgetState;
}

/** Whom an admin's gauge is about: the user by name (or email), or the guild. */
function budgetLabel({ budget }: BudgetState): string {
  if (budget.guildId) return `Guild ${budget.guildId}`;
  return budget.user?.displayName || budget.user?.email || `User ${budget.userId}`;
}

/** Members: their own budget. Admins: every budget, a page at a time. */
function Budgets({ viewer }: { viewer: Viewer }) {
  const admin = viewer.role === "ADMIN";
  const [gauges, setGauges] = useState<Gauge[]>([]);
  const [more, setMore] = useState<{ cursor: string | null; total: number } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = async (after: string | null) => {
    setBusy(true);
    setError(null);
    try {
      if (admin) {
        const { budgets } = await gql<{ budgets: Connection<BudgetState> & { totalCount: number } }>(BUDGETS, { first: BUDGET_PAGE, after });
        const page = budgets.edges.map(({ node }) => ({ label: budgetLabel(node), status: node }));
        setGauges((current) => [...(after ? current : []), ...page]);
        setMore(budgets.pageInfo.hasNextPage ? { cursor: budgets.pageInfo.endCursor, total: budgets.totalCount } : null);
      } else {
        const { budgetStatus } = await gql<{ budgetStatus: BudgetState | null }>(MY_BUDGET);
        setGauges(budgetStatus ? [{ label: "Your budget", status: budgetStatus }] : []);
      }
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => void load(null), [viewer.id, admin]);

  if (!gauges.length && !error) return null;
  return (
    <section class="budgets" aria-label="Budgets" data-testid="budgets">
      {error && <p class="error" role="alert">{error}</p>}
      <div class="budget-grid">
        {gauges.map(({ label, status }) => (
          <BudgetGauge key={status.budget.id} label={label} status={status} />
        ))}
      </div>
      {more && (
        <button class="button subtle" type="button" disabled={busy} onClick={() => void load(more.cursor)}>
          More budgets ({gauges.length} of {more.total})
        </button>
      )}
    </section>
  );
}

function BudgetGauge({ label, status }: Gauge) {
  const { budget } = status;
  return (
    <div class="budget" data-testid="budget-gauge" data-budget-id={budget.id}>
      <div class="budget-head">
        <span class="budget-name">{label}</span>
        <span class={status.exceeded ? "badge danger" : "badge"}>{percent(status.percent)}</span>
      </div>
      <meter class="gauge" min={0} max={100} low={70} high={90} optimum={0} value={Math.min(100, status.percent)} aria-label={`${label}: ${percent(status.percent)} spent`} />
      <p class="subtle">
        {usd(status.spentUsd)} of {usd(budget.limitUsd)} {budget.period.toLowerCase()} · {usd(status.remainingUsd)} left until {fullDate(status.resetsAt)}
        {status.exceeded && budget.enforcement === "HARD" ? " · spent: new messages are refused" : ""}
      </p>
    </div>
  );
}

/**
 * Open (unresolved) alerts, newest first; new ones arrive over alertRaised (subscribed before the list is
 * read). Acknowledging keeps an alert here, marked; resolving (which also acknowledges) takes it off.
 */
function AlertsPanel() {
  /** null until the list is read. */
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let active = true;
    const merge = (incoming: Alert[]) =>
      setAlerts((current) => {
        const byId = new Map((current ?? []).map((alert) => [alert.id, alert]));
        for (const alert of incoming) byId.set(alert.id, { ...byId.get(alert.id), ...alert });
        return [...byId.values()].filter((alert) => !alert.resolvedAt).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      });
    const stop = subscribe<{ alertRaised: Alert }>(ALERT_RAISED, {}, {
      next: ({ alertRaised }) => active && merge([alertRaised]),
      error: (failure) => active && failure.code !== "UNAUTHENTICATED" && setError(`Live alerts stopped: ${describeError(failure)} Reload the page to resume.`),
    });
    gql<{ alerts: { edges: { node: Alert }[] } }>(ALERTS, { first: 50 })
      .then(({ alerts: page }) => active && merge(page.edges.map((edge) => edge.node)))
      .catch((failure) => active && setError(describeError(failure)));
    return () => {
      active = false;
      stop();
    };
  }, []);

  /** Runs acknowledgeAlert or resolveAlert and puts the alert as it now is in the list (or takes it off). */
  const change = async (mutation: string, id: string) => {
    setError(null);
    try {
      const data = await gql<Record<string, Alert>>(mutation, { id });
      const updated = Object.values(data)[0];
      setAlerts((current) => (current ?? []).flatMap((alert) => (alert.id !== id ? [alert] : updated.resolvedAt ? [] : [updated])));
    } catch (failure) {
      setError(describeError(failure));
    }
  };

  return (
    <section class="alerts" aria-labelledby="alerts-title" data-testid="alerts">
      <h2 id="alerts-title">Open alerts</h2>
      {error && <p class="error" role="alert">{error}</p>}
      {!alerts ? (
        <p class="subtle" role="status">Loading alerts…</p>
      ) : !alerts.length ? (
        <p class="subtle">No open alerts.</p>
      ) : (
        <ul class="alert-list">
          {alerts.map((alert) => (
            <li key={alert.id} class={`alert alert-${alert.severity.toLowerCase()}`} data-alert-id={alert.id}>
              <span class={`badge severity-${alert.severity.toLowerCase()}`}>{alert.severity.toLowerCase()}</span>
              <span class="alert-message" id={`alert-${alert.id}`}>{alert.message}</span>
              <span class="subtle">
                {alert.source} · {fullDate(alert.createdAt)}
              </span>
              <span class="row">
                {alert.acknowledgedAt ? (
                  <span class="badge muted" data-testid="acknowledged">acknowledged</span>
                ) : (
                  <button class="button small" type="button" aria-describedby={`alert-${alert.id}`} onClick={() => void change(ACKNOWLEDGE_ALERT, alert.id)}>Acknowledge</button>
                )}
                <button class="button small" type="button" aria-describedby={`alert-${alert.id}`} onClick={() => void change(RESOLVE_ALERT, alert.id)}>Resolve</button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
