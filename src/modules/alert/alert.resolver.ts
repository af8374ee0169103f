import { Arg, Args, Ctx, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../../graphql/context";
import { UUIDScalar } from "../../graphql/scalars/uuid";
import { ConnectionType, type ConnectionShape } from "../../graphql/connection";
import { eventOrThrow, type StreamError } from "../live/live-stream";
import { SystemAlert } from "./alert.model";
import { AlertsArgs, RaiseAlertInput } from "./alert.input";
import * as alerts from "./alert.service";
import { subscribeAlertRaised } from "./alert-stream";

export const SystemAlertConnection = ConnectionType(SystemAlert);

@Resolver(() => SystemAlert)
export class AlertResolver {
  @Query(() => SystemAlertConnection, { description: "Alerts, newest first: admins every alert, anyone else the alerts about them (userId)" })
  alerts(@Args() args: AlertsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<SystemAlert>> {
    return alerts.listAlerts(ctx, args);
  }

  @Mutation(() => SystemAlert, { description: "Services and admins: raises an alert (members: FORBIDDEN). It is sent to alertRaised and, when configured, the webhook" })
  raiseAlert(@Arg("input") input: RaiseAlertInput, @Ctx() ctx: Context): Promise<SystemAlert> {
    return alerts.raiseAlert(ctx, input);
  }

  @Mutation(() => SystemAlert, { description: "Admins only: someone is on it. Idempotent: an acknowledged alert is returned as it is" })
  acknowledgeAlert(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<SystemAlert> {
    return alerts.acknowledgeAlert(ctx, id);
  }

  @Mutation(() => SystemAlert, { description: "Admins only: it is over (and acknowledged, if nobody had). Idempotent: a resolved alert is returned as it is" })
  resolveAlert(@Arg("id", () => UUIDScalar) id: string, @Ctx() ctx: Context): Promise<SystemAlert> {
    return alerts.resolveAlert(ctx, id);
  }

  @Subscription(() => SystemAlert, {
    description:
      "Each new alert as it is raised: admins every alert, anyone else the alerts about them. No catch-up: subscribe, then load " +
      "`alerts`; after a SERVICE_UNAVAILABLE error subscribe again and reload",
    subscribe: ({ context }) => subscribeAlertRaised(context as Context),
  })
  alertRaised(@Root() event: SystemAlert | StreamError): SystemAlert {
    return eventOrThrow(event);
  }
}
