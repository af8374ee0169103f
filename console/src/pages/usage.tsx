/**
 * Usage: the spend and calls of the usage ledger by day (stacked by model), tokens, error rate, a summary
 * table per model, budget gauges, and (admins) the open alerts, kept live by alertRaised, with acknowledge.
 * Members see their own usage; admins everyone's (the server decides, as for any client).
 */
import { useEffect, useState } from "preact/hooks";
import { describeError } from "../api";
import { gql, subscribe } from "../client";
import { Chart } from "../components/chart";
import { count, fullDate, usd } from "../format";
import { ACKNOWLEDGE_ALERT, ALERT_RAISED, ALERTS, budgetsQuery, USAGE, type Alert, type BudgetState, type UsageBucket } from "../queries";
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
      <div class="table-scroll">
        <table class="table" data-testid="usage-table">
          <caption>By model</caption>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" class="num">Calls</th>
              <th scope="col" class="num">Prompt tokens</th>
              <th scope="col" class="num">Completion tokens</th>
              <th scope="col" class="num">Cost</th>
              <th scope="col" class="num">Errors</th>
            </tr>
          </thead>
          <tbody>
            {totals.map((row) => (
              <tr key={row.model} data-model={row.model}>
                <th scope="row">{row.model}</th>
                <td class="num" data-col="requests">{count(row.requests)}</td>
                <td class="num" data-col="promptTokens">{count(row.promptTokens)}</td>
                <td class="num" data-col="completionTokens">{count(row.completionTokens)}</td>
                <td class="num" data-col="costUsd">{usd(row.costUsd)}</td>
                <td class="num" data-col="errors">{count(row.errors)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
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

function Budgets({ viewer }: { viewer: Viewer }) {
  const [budgets, setBudgets] = useState<{ label: string; status: BudgetState }[] | null>(null);
  useEffect(() => {
    let active = true;
    gql<Record<string, BudgetState | null>>(budgetsQuery([]))
      .then((data) => {
        if (!active) return;
        setBudgets(Object.values(data).flatMap((status) => (status ? [{ label: "Your budget", status }] : [])));
      })
      .catch(() => active && setBudgets([]));
    return () => {
      active = false;
    };
  }, [viewer.id]);
  if (!budgets?.length) return null;
  return (
    <section class="budgets" aria-label="Budgets">
      {budgets.map(({ label, status }) => (
        <div class="budget" key={status.budget.id} data-testid="budget-gauge">
          <div class="budget-head">
            <span>
              {label}: {usd(status.budget.limitUsd)} {status.budget.period.toLowerCase()}
            </span>
            <span class={status.exceeded ? "badge danger" : "badge"}>{percent(status.percent)}</span>
          </div>
          <meter class="gauge" min={0} max={100} low={70} high={90} optimum={0} value={Math.min(100, status.percent)} aria-label={`${label}: ${percent(status.percent)} spent`} />
          <p class="subtle">
            {usd(status.remainingUsd)} left since {fullDate(status.periodStart)}
            {status.exceeded && status.budget.enforcement === "HARD" ? " · spent: new messages are refused" : ""}
          </p>
        </div>
      ))}
    </section>
  );
}

/** Open alerts, newest first; new ones arrive over alertRaised (subscribed before the list is read). */
function AlertsPanel() {
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let active = true;
    const merge = (incoming: Alert[]) =>
      setAlerts((current) => {
        const byId = new Map(current.map((alert) => [alert.id, alert]));
        for (const alert of incoming) byId.set(alert.id, { ...byId.get(alert.id), ...alert });
        return [...byId.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
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

  const acknowledge = async (id: string) => {
    setError(null);
    try {
      const { acknowledgeAlert } = await gql<{ acknowledgeAlert: Alert }>(ACKNOWLEDGE_ALERT, { id });
      setAlerts((current) => current.map((alert) => (alert.id === id ? acknowledgeAlert : alert)));
    } catch (failure) {
      setError(describeError(failure));
    }
  };

  return (
    <section class="alerts" aria-label="Open alerts" data-testid="alerts">
      <h2>Open alerts</h2>
      {error && <p class="error" role="alert">{error}</p>}
      {!alerts.length ? (
        <p class="subtle">No open alerts.</p>
      ) : (
        <ul class="alert-list">
          {alerts.map((alert) => (
            <li key={alert.id} class={`alert alert-${alert.severity.toLowerCase()}`} data-alert-id={alert.id}>
              <span class={`badge severity-${alert.severity.toLowerCase()}`}>{alert.severity.toLowerCase()}</span>
              <span class="alert-message">{alert.message}</span>
              <span class="subtle">
                {alert.source} · {fullDate(alert.createdAt)}
              </span>
              {alert.acknowledgedAt ? (
                <span class="badge muted" data-testid="acknowledged">acknowledged</span>
              ) : (
                <button class="button small" type="button" onClick={() => void acknowledge(alert.id)}>Acknowledge</button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
