import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { signIn } from "../session";

export function SignInPage({ notice }: { notice?: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    document.title = "Sign in · Parley Console";
  }, []);
  // As the form appears, not a frame later: typing at once goes into the field.
  useLayoutEffect(() => input.current?.focus(), []);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(token);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <form class="card signin-card" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">
          Parley <span class="brand-sub">Console</span>
        </h1>
        {notice && (
          <p class="notice" role="alert" data-testid="signin-notice">
            {notice}
          </p>
        )}
        <label class="field-label" for="token">
          API key or JWT
        </label>
        <input
          ref={input}
          id="token"
          name="token"
          class="input"
          type="password"
          autocomplete="off"
          spellcheck={false}
          placeholder="pk_… or eyJ…"
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
          required
        />
        {error && (
          <p class="error" role="alert" data-testid="signin-error">
            {error}
          </p>
        )}
        <button class="button primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p class="hint">
          The token stays in this browser tab only (session storage) and is sent to this Parley server as a bearer token.
          Create a key with <code>npm run cli -- create-key</code>.
        </p>
      </form>
    </main>
  );
}
