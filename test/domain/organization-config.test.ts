import { readFileSync } from 'fs';
import { join } from 'path';
import { InvalidConfigError, OrganizationSchema, parseConfig } from '../../lambdas/domain/config';

const REPO_ROOT = join(__dirname, '..', '..');
const readJson = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(REPO_ROOT, file), 'utf8')) as Record<string, unknown>;
const example = (): Record<string, unknown> => readJson('examples/organization.config.json');
const withOrganization = (organization: unknown): Record<string, unknown> => ({ ...example(), organization });
const HUB = { account: '111111111111', region: 'eu-west-1' };

function problemsOf(raw: unknown): readonly string[] {
  try {
    parseConfig(raw, 'test.json');
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return (error as InvalidConfigError).problems;
  }
  throw new Error('expected the config to be refused');
}

describe('Function: parseConfig (organization)', () => {
  it('accepts the shipped example: a hub and two spoke accounts, one in a second region', () => {
    const config = parseConfig(example());
    expect(config.organization?.hub).toEqual(HUB);
    expect(config.organization?.spokes.map((s) => `${s.account}/${s.region}`)).toEqual(['222222222222/eu-west-1', '333333333333/us-east-1']);
    expect(new Set(config.organization?.spokes.map((s) => s.region)).size).toBe(2);
  });

  it('leaves organization undefined for the default single-account config', () => {
    expect(parseConfig(readJson('patchline.config.json')).organization).toBeUndefined();
  });

  it('accepts the hub account as a spoke in another region, and an organization id', () => {
    const config = parseConfig(withOrganization({ hub: HUB, spokes: [{ account: HUB.account, region: 'us-east-1' }], organizationId: 'o-a1b2c3d4e5' }));
    expect(config.organization?.organizationId).toBe('o-a1b2c3d4e5');
    expect(config.organization?.spokes[0].repositories).toBeUndefined();
  });

  it('refuses an account id that is not 12 digits', () => {
    const problems = problemsOf(withOrganization({ hub: HUB, spokes: [{ account: '22222222222', region: 'eu-west-1' }] }));
    expect(problems).toEqual([expect.stringContaining('organization.spokes.0.account: an AWS account id is 12 digits (received "22222222222")')]);
  });

  it('refuses a region that is not a region name', () => {
    const problems = problemsOf(withOrganization({ hub: { account: HUB.account, region: 'Europe' }, spokes: [{ account: '222222222222', region: 'eu-west-1' }] }));
    expect(problems).toEqual([expect.stringContaining('organization.hub.region: not an AWS region name')]);
  });

  it('refuses the same spoke account and region listed twice', () => {
    const spoke = { account: '222222222222', region: 'eu-west-1' };
    const problems = problemsOf(withOrganization({ hub: HUB, spokes: [spoke, { ...spoke, projects: ['apps-*'] }] }));
    expect(problems).toEqual([expect.stringContaining('organization.spokes.1: spoke 222222222222/eu-west-1 is listed twice')]);
  });

  it('refuses the hub account and region as a spoke', () => {
    const problems = problemsOf(withOrganization({ hub: HUB, spokes: [{ ...HUB }] }));
    expect(problems).toEqual([expect.stringContaining('organization.spokes.0: spoke 111111111111/eu-west-1 is the hub itself')]);
  });

  it('refuses an organization id without the o- form, an empty spoke list and unknown fields', () => {
    expect(problemsOf(withOrganization({ hub: HUB, spokes: [{ account: '222222222222', region: 'eu-west-1' }], organizationId: 'org-1' }))).toEqual([
      expect.stringContaining('organization.organizationId: an organization id is o-'),
    ]);
    expect(problemsOf(withOrganization({ hub: HUB, spokes: [] }))).toEqual([expect.stringContaining('organization.spokes: organization.spokes needs at least one spoke')]);
    expect(problemsOf(withOrganization({ hub: HUB, spokes: [{ account: '222222222222', region: 'eu-west-1', vpc: 'x' }] }))[0]).toContain('organization.spokes.0');
  });

  it('refuses a spoke repository or project that is not a name or prefix*', () => {
    const problems = problemsOf(withOrganization({ hub: HUB, spokes: [{ account: '222222222222', region: 'eu-west-1', repositories: ['Apps/X'], projects: ['-bad'] }] }));
    expect(problems).toEqual([
      expect.stringContaining('organization.spokes.0.repositories.0: not an ECR repository name or prefix*'),
      expect.stringContaining('organization.spokes.0.projects.0: not a CodeBuild project name or prefix*'),
    ]);
  });
});

describe('Constant: OrganizationSchema', () => {
  it('parses on its own, without the rest of the config', () => {
    expect(OrganizationSchema.safeParse({ hub: HUB, spokes: [{ account: '222222222222', region: 'ap-southeast-2' }] }).success).toBe(true);
    expect(OrganizationSchema.safeParse({ hub: HUB }).success).toBe(false);
  });
});
