/**
 * JWTs from the operator's identity provider, verified with jose: HS256 with a shared secret, or the
 * provider's JWKS (RS/ES/PS/EdDSA). The subject maps to users.external_id; a first valid token of an
 * unknown subject creates a member when auto-provisioning is on. Roles come from Parley's database, never
 * from token claims, so a compromised or misconfigured provider cannot mint admins.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import type { Knex } from "knex";
import type { JwtConfig } from "../../config";
import { Role } from "../user/role.enum";
import type { Viewer } from "../user/viewer";

const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

// One key set per URL for the life of the process: jose caches and refreshes the keys inside it.
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

export const looksLikeJwt = (token: string) => JWT_SHAPE.test(token);

/** The verified claims, or undefined for any invalid token (the reason is not told to the caller). */
export async function verifyJwt(jwt: JwtConfig, token: string): Promise<JWTPayload | undefined> {
  const options = { issuer: jwt.issuer, audience: jwt.audience, clockTolerance: jwt.clockToleranceSeconds, requiredClaims: ["sub", "exp"] };
  try {
    if (jwt.secret) {
      const { payload } = await jwtVerify(token, new TextEncoder().encode(jwt.secret), { ...options, algorithms: ["HS256"] });
      return payload;
    }
    let keySet = keySets.get(jwt.jwksUrl!);
    if (!keySet) keySets.set(jwt.jwksUrl!, (keySet = createRemoteJWKSet(new URL(jwt.jwksUrl!))));
    const { payload } = await jwtVerify(token, keySet, { ...options, algorithms: ASYMMETRIC });
    return payload;
  } catch {
    return undefined;
  }
}

function displayNameOf(claims: JWTPayload): string {
  const candidates = [claims.name, claims.preferred_username, claims.nickname, claims.email, claims.sub];
  const name = candidates.find((value): value is string => typeof value === "string" && value.trim() !== "")!;
  return name.trim().slice(0, 200);
}

interface UserRow {
  id: string;
  role: Role;
  displayName: string;
  isActive: boolean;
}

/** Where the request came from, for the audit entry of a provisioning. */
export interface RequestMeta {
  ip?: string | null;
  requestId?: string | null;
}

/** The viewer for a verified token: the user with that subject, created on first sight if allowed. */
export async function viewerForJwt(knex: Knex, jwt: JwtConfig, token: string, meta: RequestMeta = {}): Promise<Viewer | undefined> {
  const claims = await verifyJwt(jwt, token);
  if (!claims?.sub) return undefined;
  const find = (): Promise<UserRow | undefined> =>
    knex("users").where("external_id", claims.sub).first("id", "role", "display_name", "is_active");
  let user = await find();
  if (!user && jwt.autoProvision) {
    const claimed = typeof claims.email === "string" && claims.email_verified === true ? claims.email : null;
    await knex.transaction(async (trx) => {
      // An email another user already has is left out rather than failing the sign-in (and never links the two).
      const taken = claimed && (await trx("users").whereRaw("lower(email) = lower(?)", [claimed]).first("id"));
      // Two first requests can race: the unique external_id lets one insert win and the other read it.
      const [created] = await trx("users")
        .insert({ externalId: claims.sub, displayName: displayNameOf(claims), role: Role.MEMBER, email: taken ? null : claimed })
        .onConflict(trx.raw("(external_id)"))
        .ignore()
        .returning(["id"]);
      if (created) {
        await trx("audit_logs").insert({
          actorId: created.id,
          action: "user.provision",
          targetType: "user",
          targetId: created.id,
          details: JSON.stringify({ via: "jwt" }),
          ip: meta.ip ?? null,
          requestId: meta.requestId ?? null,
        });
      }
    });
    user = await find();
  }
  if (!user || !user.isActive) return undefined;
  return { id: user.id, role: user.role, displayName: user.displayName };
}
