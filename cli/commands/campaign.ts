import { CampaignRecord, CampaignStore, MemberRecord } from '../../lambdas/store/campaign-store';
import { UsageError } from '../cli-error';
import { openStore } from '../store-session';

/**
 * A campaign as a readable timeline that answers "why was this image rebuilt?": the trigger, then for each member
 * its state changes and the chain of parents that carried the campaign down to it.
 */
export function formatCampaignTimeline(campaign: CampaignRecord, members: readonly MemberRecord[]): string {
  const byImage = new Map(members.map((m) => [m.image, m]));
  const chainOf = (image: string): string[] => {
    const chain = [image];
    const seen = new Set(chain);
    let current = byImage.get(image);
    while (current) {
      const parent = current.parents.find((p) => (byImage.has(p) || p === campaign.rootImage) && !seen.has(p));
      if (!parent) break;
      chain.push(parent);
      seen.add(parent);
      current = byImage.get(parent);
    }
    return chain;
  };
  const counts = new Map<string, number>();
  for (const m of members) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
  const lines = [
    `campaign ${campaign.campaignId}: ${campaign.trigger} — ${campaign.reason}`,
    `  started ${campaign.startedAt}; root ${campaign.rootImage}@${campaign.rootDigest}`,
    `  members: ${members.length} (${[...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'none'})`,
  ];
  const events = members.flatMap((m) => (m.history ?? []).map((h) => ({ ...h, image: m.image })));
  events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  lines.push('  timeline:');
  for (const e of events) lines.push(`    ${e.at}  ${e.image.padEnd(32)} ${e.state}${e.detail ? `  (${e.detail.slice(0, 160)})` : ''}`);
  lines.push('  why each image was rebuilt:');
  for (const m of [...members].sort((a, b) => chainOf(a.image).length - chainOf(b.image).length || a.image.localeCompare(b.image))) {
    const chain = chainOf(m.image);
    lines.push(`    ${m.image}: ${m.state}${m.digest ? ` as ${m.digest.slice(0, 19)}…` : ''}${m.buildId ? ` (build ${m.buildId})` : ''} — ${chain.reverse().join(' → ')}${m.reason ? `; ${m.reason.slice(0, 160)}` : ''}`);
  }
  return lines.join('\n');
}

export async function campaignListCommand(options: { table?: string; limit?: string }): Promise<string> {
  const store = await openStore({ table: options.table });
  try {
    const campaigns = await store.campaigns.list(Number(options.limit ?? 50));
    if (campaigns.length === 0) return `no campaigns in the ${store.where}`;
    return campaigns.map((c) => `${c.campaignId}  ${c.startedAt}  ${c.trigger.padEnd(8)}  ${c.rootImage}  ${c.memberCount} member(s) — ${c.reason}`).join('\n');
  } finally {
    await store.close();
  }
}

export async function campaignShowCommand(id: string, options: { table?: string }): Promise<string> {
  if (!/^c-[a-f0-9]{20}$/.test(id)) throw new UsageError(`campaign id ${JSON.stringify(id)} must look like c-<20 hex>`);
  const store = await openStore({ table: options.table });
  try {
    return await showCampaign(store.campaigns, id);
  } finally {
    await store.close();
  }
}

export async function showCampaign(campaigns: CampaignStore, id: string): Promise<string> {
  const campaign = await campaigns.get(id);
  if (!campaign) throw new UsageError(`campaign ${id} not found`);
  return formatCampaignTimeline(campaign, await campaigns.members(id));
}
