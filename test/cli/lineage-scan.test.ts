import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { dockerfileVariant, isDockerfileName, repositoryForPath, scanDockerfiles } from '../../cli/lineage-scan';
import { parseDockerfileParents } from '../../lambdas/domain/dockerfile-lineage';
import { LineageGraph, Tier } from '../../lambdas/domain/lineage';

const DOCKERFILES = join(__dirname, '../../../shared/data/dockerfiles');
const SAMPLES = readdirSync(DOCKERFILES).filter((f) => f.endsWith('.Dockerfile'));

/** `owner+repo__a__b__Dockerfile.x.Dockerfile` (SOURCES.md's naming) back to the file's place: `owner/repo/a/b/Dockerfile.x`. */
function samplePath(name: string): string {
  const [ownerRepo, ...rest] = name.slice(0, -'.Dockerfile'.length).split('__');
  return [ownerRepo.replace('+', '/'), ...rest].join('/');
}

/** The image key expected for each sample's place in the tree. */
const EXPECTED_KEYS: Record<string, string> = {
  'ClickHouse/docker-library/server/26.3.17.110/Dockerfile.distroless': 'clickhouse/docker-library/server/26.3.17.110-distroless',
  'Kong/docker-kong/Dockerfile.rpm': 'kong/docker-kong-rpm',
  'Kong/docker-kong/customize/Dockerfile': 'kong/docker-kong/customize',
  'OpenLiberty/ci.docker/build/test-pet-clinic/Dockerfile': 'openliberty/ci.docker/build/test-pet-clinic',
  'WASdev/ci.docker/ga/25.0.0.12/full/Dockerfile.ubi.openjdk17': 'wasdev/ci.docker/ga/25.0.0.12/full-ubi.openjdk17',
  'carlossg/docker-maven/eclipse-temurin-21-alpine/Dockerfile': 'carlossg/docker-maven/eclipse-temurin-21-alpine',
  'docker-library/buildpack-deps/debian/bookworm/scm/Dockerfile': 'docker-library/buildpack-deps/debian/bookworm/scm',
  'docker-library/docker/29/dind-rootless/Dockerfile': 'docker-library/docker/29/dind-rootless',
  'docker-library/golang/1.26/windows/nanoserver-ltsc2025/Dockerfile': 'docker-library/golang/1.26/windows/nanoserver-ltsc2025',
  'docker-library/golang/tip/trixie/Dockerfile': 'docker-library/golang/tip/trixie',
  'erlef/docker-elixir/1.15/Dockerfile': 'erlef/docker-elixir/1.15',
  'fluent/fluentd-docker-image/v1.16/arm64/debian/Dockerfile': 'fluent/fluentd-docker-image/v1.16/arm64/debian',
  'haskell/docker-haskell/9.0/buster/Dockerfile': 'haskell/docker-haskell/9.0/buster',
  'nats-io/nats-docker/2.11.x/nanoserver-ltsc2022/Dockerfile.preview': 'nats-io/nats-docker/2.11.x/nanoserver-ltsc2022-preview',
  'nginx/docker-nginx/modules/Dockerfile': 'nginx/docker-nginx/modules',
  'nginx/docker-nginx/modules/Dockerfile.alpine': 'nginx/docker-nginx/modules-alpine',
  'osrf/docker_images/ros2/source/source/Dockerfile': 'osrf/docker_images/ros2/source/source',
  'percona/percona-docker/postgresql-containers/build/postgres-gis/Dockerfile': 'percona/percona-docker/postgresql-containers/build/postgres-gis',
};
/** The two samples that cannot resolve without build args, and the variable each error names. */
const EXPECTED_ERRORS: Record<string, string> = {
  'Kong/docker-kong/kong-build-tools/test/Dockerfile.test': 'DOCKER_REPOSITORY',
  'Lightstreamer/Docker/Dockerfile.template': 'JAVA_VERSION',
};

let tmp: string;
let root: string;

function put(path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'patchline-lineage-scan-'));
  root = join(tmp, 'Platform Images');
  for (const name of SAMPLES) {
    const target = join(root, samplePath(name));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(DOCKERFILES, name), target);
  }
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('Function: scanDockerfiles', () => {
  describe('on the real sample Dockerfiles', () => {
    it('keys every file by its place and reads its parents', async () => {
      const scan = await scanDockerfiles(root);
      expect(Object.fromEntries(scan.images.map((i) => [i.file, i.image]))).toEqual(EXPECTED_KEYS);
      for (const image of scan.images) {
        const text = readFileSync(join(root, image.file), 'utf8');
        expect(image.parents).toEqual(parseDockerfileParents(text).edges);
      }
      expect(scan.images.find((i) => i.image === 'docker-library/golang/tip/trixie')?.parents).toEqual([
        { image: 'buildpack-deps:trixie-scm', role: 'runtime' },
        { image: 'golang:trixie', role: 'build' },
      ]);
    });

    it('reports the files that cannot resolve, with file, line and message, and scans the rest', async () => {
      const scan = await scanDockerfiles(root);
      expect(scan.errors.map((e) => e.file).sort()).toEqual(Object.keys(EXPECTED_ERRORS).sort());
      for (const error of scan.errors) {
        expect(error.code).toBe('DOCKERFILE_UNKNOWN_ARG');
        expect(error.message).toContain(`${error.file}:${error.line}: ARG ${EXPECTED_ERRORS[error.file]}`);
      }
      expect(scan.images).toHaveLength(SAMPLES.length - Object.keys(EXPECTED_ERRORS).length);
    });

    it('applies build args to every file', async () => {
      const scan = await scanDockerfiles(root, { buildArgs: { DOCKER_REPOSITORY: 'kong/kong-build-tools', DOCKER_OPENRESTY_SUFFIX: 'ubuntu' } });
      expect(scan.images.find((i) => i.file === 'Kong/docker-kong/kong-build-tools/test/Dockerfile.test')).toEqual({
        file: 'Kong/docker-kong/kong-build-tools/test/Dockerfile.test',
        image: 'kong/docker-kong/kong-build-tools/test-test',
        parents: [{ image: 'kong/kong-build-tools:test-ubuntu', role: 'runtime' }],
      });
      expect(scan.errors.map((e) => e.file)).toEqual(['Lightstreamer/Docker/Dockerfile.template']);
    });

    it('produces images a LineageGraph accepts', async () => {
      const scan = await scanDockerfiles(root);
      const graph = LineageGraph.fromImages(scan.images.map((i) => ({ image: i.image, tier: Tier.APPLICATION, parents: i.parents })));
      expect(graph.children('buildpack-deps:trixie-scm')).toEqual(['docker-library/golang/tip/trixie']);
      expect(graph.children('nginx:mainline-alpine')).toEqual(['nginx/docker-nginx/modules-alpine']);
    });

    it('uses repositoryFor when given', async () => {
      const scan = await scanDockerfiles(root, { repositoryFor: (file) => `acme/${file.split('/').slice(1, 3).join('-').toLowerCase()}` });
      expect(scan.images.find((i) => i.file === 'erlef/docker-elixir/1.15/Dockerfile')?.image).toBe('acme/docker-elixir-1.15');
    });
  });

  describe('on a tree with edge cases', () => {
    let edge: string;
    beforeAll(() => {
      edge = root;
      root = join(tmp, 'edge cases');
      put('Dockerfile', 'FROM alpine:3.20\n');
      put('tools/build.Dockerfile', 'FROM golang:1.23\n');
      put('tools/Dockerfile.dockerignore', 'node_modules\n');
      put('tools/README.md', 'FROM nothing\n');
      put('svc/Containerfile', 'FROM registry.access.redhat.com/ubi9/ubi-minimal:9.5\n');
      put('node_modules/pkg/Dockerfile', 'FROM node:22\n');
      put('.git/Dockerfile', 'FROM node:22\n');
      put('broken/Dockerfile', '# no FROM here\nRUN true\n');
      put('Web_App/Dockerfile', 'FROM nginx:1.27\n');
      put('web_app/Dockerfile', 'FROM nginx:1.27\n');
      put('big/Dockerfile', `FROM alpine:3.20\n${'# padding\n'.repeat(200)}`);
      put('bom/Dockerfile', '\uFEFFFROM debian:bookworm\n');
      symlinkSync(root, join(root, 'loop'));
    });
    afterAll(() => {
      root = edge;
    });

    it('finds Dockerfiles by name, skips node_modules, .git and symlinked directories, and keeps going past bad files', async () => {
      const scan = await scanDockerfiles(root, { maxFileBytes: 1000 });
      expect(scan.images.map((i) => [i.file, i.image])).toEqual([
        ['Dockerfile', 'edge-cases'],
        ['Web_App/Dockerfile', 'web_app'],
        ['bom/Dockerfile', 'bom'],
        ['svc/Containerfile', 'svc'],
        ['tools/build.Dockerfile', 'tools-build'],
      ]);
      expect(scan.errors).toEqual([
        expect.objectContaining({ file: 'big/Dockerfile', code: 'DOCKERFILE_TOO_LARGE' }),
        { file: 'broken/Dockerfile', code: 'DOCKERFILE_NO_FROM', message: 'broken/Dockerfile: no FROM instruction, so the Dockerfile names no base image' },
        expect.objectContaining({ file: 'web_app/Dockerfile', code: 'DUPLICATE_IMAGE', message: expect.stringContaining('already taken by Web_App/Dockerfile') }),
      ]);
    });

    it('reads a file the size limit allows', async () => {
      const scan = await scanDockerfiles(root);
      expect(scan.images.find((i) => i.file === 'big/Dockerfile')?.parents).toEqual([{ image: 'alpine:3.20', role: 'runtime' }]);
    });
  });
});

describe('Function: repositoryForPath', () => {
  it.each([
    ['web/Dockerfile', 'web'],
    ['web/Dockerfile.alpine', 'web-alpine'],
    ['web/alpine.Dockerfile', 'web-alpine'],
    ['Dockerfile', 'root'],
    ['Dockerfile.Alpine', 'root-alpine'],
    ['Team A/My App!/Dockerfile', 'team-a/my-app'],
    ['a..b/__c__/Dockerfile', 'a-b/c'],
    ['ab/--/Dockerfile', 'ab'],
  ])('derives %s → %s', (file, expected) => {
    expect(repositoryForPath(file, 'Root')).toBe(expected);
  });

  it('refuses a path that leaves no valid name', () => {
    expect(repositoryForPath('!!!/Dockerfile', 'Root')).toBeUndefined();
    expect(repositoryForPath('Dockerfile', '$$')).toBeUndefined();
    // ECR repository names are at least two characters.
    expect(repositoryForPath('x/Dockerfile', 'Root')).toBeUndefined();
  });
});

describe('Function: isDockerfileName', () => {
  it.each(['Dockerfile', 'dockerfile', 'Containerfile', 'Dockerfile.alpine', 'build.Dockerfile', 'Dockerfile.ubi.openjdk17'])('accepts %s', (name) => {
    expect(isDockerfileName(name)).toBe(true);
  });

  it.each(['Dockerfile.dockerignore', 'build.Dockerfile.dockerignore', 'README.md', 'docker-compose.yml', 'Dockerfiles', '.dockerignore'])(
    'refuses %s',
    (name) => {
      expect(isDockerfileName(name)).toBe(false);
    },
  );

  it('names the variant', () => {
    expect(dockerfileVariant('Dockerfile.alpine')).toBe('alpine');
    expect(dockerfileVariant('alpine.Dockerfile')).toBe('alpine');
    expect(dockerfileVariant('Dockerfile')).toBeUndefined();
  });
});
