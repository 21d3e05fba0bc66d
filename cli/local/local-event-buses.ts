import type { OrganizationConfig } from '../../lambdas/domain/config';
import type { CfnTemplate } from './synthesized-template';

export const DEFAULT_EVENT_BUS = 'default';

/** The bus a synthesized rule listens on: its EventBusName (a Ref resolves to the bus's Name), else the default bus. */
export function ruleEventBus(template: CfnTemplate, rule: { Properties?: Record<string, unknown> }): string {
  const value = rule.Properties?.EventBusName;
  if (value === undefined) return DEFAULT_EVENT_BUS;
  const ref = (value as { Ref?: unknown }).Ref;
  const name = typeof ref === 'string' ? template.Resources[ref]?.Properties?.Name : value;
  return typeof name === 'string' ? name : DEFAULT_EVENT_BUS;
}

/**
 * The bus an event reaches in the hub: the hub's own account/region events (and the runtime's own execution status
 * changes) arrive on the default bus; anything else only ever arrives forwarded by a spoke, on the hub bus.
 */
export function eventBusOf(event: unknown, organization: OrganizationConfig | undefined, hubBusName: string): string {
  if (!organization) return DEFAULT_EVENT_BUS;
  const { account, region, source } = (event ?? {}) as { account?: unknown; region?: unknown; source?: unknown };
  if (source === 'aws.states') return DEFAULT_EVENT_BUS;
  return account === organization.hub.account && region === organization.hub.region ? DEFAULT_EVENT_BUS : hubBusName;
}
