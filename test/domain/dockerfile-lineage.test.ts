import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import {
  DockerfileInvalidReferenceError,
  DockerfileNoFromError,
  DockerfileParents,
  DockerfileStageReferenceError,
  DockerfileSyntaxError,
  DockerfileUnknownArgError,
  DockerfileUnknownTargetError,
  parseDockerfileParents,
  ParentVia,
} from '../../lambdas/domain/dockerfile-lineage';
import { InvalidImageReferenceError } from '../../lambdas/domain/image-ref';

const DOCKERFILES = join(__dirname, '../../../shared/data/dockerfiles');
const LINEAGE = join(__dirname, '../../../shared/data/lineage');

function readSample(name: string): string {
  return readFileSync(join(DOCKERFILES, name), 'utf8');
}

function parseSample(name: string, buildArgs?: Record<string, string>): DockerfileParents {
  return parseDockerfileParents(readSample(name), { file: name, buildArgs });
}

/** [image key, role, 1-based line, via] for every use of an external image, in file order. */
type Use = [string, 'runtime' | 'build', number, ParentVia];

function uses(result: DockerfileParents): Use[] {
  return result.parents.map((p) => [p.image, p.role, p.line, p.via]);
}

function captureError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, none was thrown');
}

const SHA_CH_PROD = 'sha256:d3cda6e91129130d7229a1806b6a73d292ef245ab032da7851907798024cefba';
const SHA_CH_DEBUG = 'sha256:61e8df8909b98d2cf65fa8f620ee8292be40becd9de3b85d42852bee3f86fdb0';
const SHA_UBI = 'sha256:92b1d5747a93608b6adb64dfd54515c3c5a360802db4706765ff3d8470df6290';
const SHA_BUSTER = 'sha256:c9285bcb198c0ae171bfc350a4af94ddfda547c4e4d2900a92c280232319341e';

/**
 * Expected parents of every sample, worked out by reading each file. Files that cannot resolve without build args map
 * to the variable the error must name.
 */
const EXPECTED: Record<string, { uses: Use[]; final: { index: number; name?: string; runtime?: string } } | { unknownArg: string; line: number }> = {
  'ClickHouse+docker-library__server__26.3.17.110__Dockerfile.distroless.Dockerfile': {
    // The last stage is `debug`; `production` is another target, so its base is only a build parent here.
    uses: [
      ['ubuntu:22.04', 'build', 2, 'FROM'],
      ['gcr.io/distroless/cc-debian13:nonroot', 'build', 13, 'FROM'],
      ['gcr.io/distroless/cc-debian13:debug-nonroot', 'runtime', 15, 'FROM'],
    ],
    final: { index: 2, name: 'debug', runtime: 'gcr.io/distroless/cc-debian13:debug-nonroot' },
  },
  'Kong+docker-kong__Dockerfile.rpm.Dockerfile': {
    uses: [[`registry.access.redhat.com/ubi9-minimal@${SHA_UBI}`, 'runtime', 2, 'FROM']],
    final: { index: 0, runtime: `registry.access.redhat.com/ubi9-minimal@${SHA_UBI}` },
  },
  'Kong+docker-kong__customize__Dockerfile.Dockerfile': {
    uses: [
      ['kong:latest', 'build', 3, 'FROM'],
      ['kong:latest', 'runtime', 8, 'FROM'],
    ],
    final: { index: 1, runtime: 'kong:latest' },
  },
  'Kong+docker-kong__kong-build-tools__test__Dockerfile.test.Dockerfile': { unknownArg: 'DOCKER_REPOSITORY', line: 7 },
  'Lightstreamer+Docker__Dockerfile.template.Dockerfile': { unknownArg: 'JAVA_VERSION', line: 5 },
  'OpenLiberty+ci.docker__build__test-pet-clinic__Dockerfile.Dockerfile': {
    uses: [
      ['openliberty/open-liberty:kernel-slim-java8-openj9-ubi', 'build', 3, 'FROM'],
      ['openliberty/open-liberty:kernel-slim-java8-openj9-ubi', 'runtime', 4, 'FROM'],
    ],
    final: { index: 1, runtime: 'openliberty/open-liberty:kernel-slim-java8-openj9-ubi' },
  },
  'WASdev+ci.docker__ga__25.0.0.12__full__Dockerfile.ubi.openjdk17.Dockerfile': {
    uses: [
      ['icr.io/appcafe/websphere-liberty:25.0.0.12-kernel-java17-openj9-ubi', 'build', 3, 'FROM'],
      ['icr.io/appcafe/websphere-liberty:25.0.0.12-kernel-java17-openj9-ubi', 'runtime', 7, 'FROM'],
    ],
    final: { index: 1, runtime: 'icr.io/appcafe/websphere-liberty:25.0.0.12-kernel-java17-openj9-ubi' },
  },
  'carlossg+docker-maven__eclipse-temurin-21-alpine__Dockerfile.Dockerfile': {
    uses: [
      ['eclipse-temurin:21-jdk-alpine', 'runtime', 2, 'FROM'],
      ['maven:3.9.14-eclipse-temurin-17', 'build', 3, 'COPY --from'],
      ['maven:3.9.14-eclipse-temurin-17', 'build', 4, 'COPY --from'],
      ['maven:3.9.14-eclipse-temurin-17', 'build', 5, 'COPY --from'],
    ],
    final: { index: 0, runtime: 'eclipse-temurin:21-jdk-alpine' },
  },
  'docker-library+buildpack-deps__debian__bookworm__scm__Dockerfile.Dockerfile': {
    uses: [['buildpack-deps:bookworm-curl', 'runtime', 2, 'FROM']],
    final: { index: 0, runtime: 'buildpack-deps:bookworm-curl' },
  },
  'docker-library+docker__29__dind-rootless__Dockerfile.Dockerfile': {
    uses: [['docker:29-dind', 'runtime', 2, 'FROM']],
    final: { index: 0, runtime: 'docker:29-dind' },
  },
  'docker-library+golang__1.26__windows__nanoserver-ltsc2025__Dockerfile.Dockerfile': {
    uses: [
      ['mcr.microsoft.com/windows/nanoserver:ltsc2025', 'runtime', 2, 'FROM'],
      ['golang:1.26.1-windowsservercore-ltsc2025', 'build', 3, 'COPY --from'],
    ],
    final: { index: 0, runtime: 'mcr.microsoft.com/windows/nanoserver:ltsc2025' },
  },
  'docker-library+golang__tip__trixie__Dockerfile.Dockerfile': {
    uses: [
      ['buildpack-deps:trixie-scm', 'build', 2, 'FROM'],
      ['golang:trixie', 'build', 3, 'COPY --from'],
      ['buildpack-deps:trixie-scm', 'runtime', 5, 'FROM'],
    ],
    final: { index: 1, runtime: 'buildpack-deps:trixie-scm' },
  },
  'erlef+docker-elixir__1.15__Dockerfile.Dockerfile': {
    uses: [['erlang:26', 'runtime', 2, 'FROM']],
    final: { index: 0, runtime: 'erlang:26' },
  },
  'fluent+fluentd-docker-image__v1.16__arm64__debian__Dockerfile.Dockerfile': {
    uses: [
      ['golang:alpine', 'build', 2, 'FROM'],
      ['arm64v8/ruby:3.2-slim-bookworm', 'runtime', 3, 'FROM'],
    ],
    final: { index: 1, runtime: 'arm64v8/ruby:3.2-slim-bookworm' },
  },
  'haskell+docker-haskell__9.0__buster__Dockerfile.Dockerfile': {
    uses: [['buildpack-deps:buster', 'runtime', 2, 'FROM']],
    final: { index: 0, runtime: 'buildpack-deps:buster' },
  },
  'nats-io+nats-docker__2.11.x__nanoserver-ltsc2022__Dockerfile.preview.Dockerfile': {
    uses: [
      ['nats:2.11.17-windowsservercore-ltsc2022', 'build', 3, 'FROM'],
      ['mcr.microsoft.com/windows/nanoserver:ltsc2022', 'runtime', 4, 'FROM'],
    ],
    final: { index: 1, runtime: 'mcr.microsoft.com/windows/nanoserver:ltsc2022' },
  },
  'nginx+docker-nginx__modules__Dockerfile.Dockerfile': {
    uses: [
      ['nginx:mainline', 'build', 3, 'FROM'],
      ['nginx:mainline', 'runtime', 5, 'FROM'],
    ],
    final: { index: 1, runtime: 'nginx:mainline' },
  },
  'nginx+docker-nginx__modules__Dockerfile.alpine.Dockerfile': {
    uses: [
      ['nginx:mainline-alpine', 'build', 3, 'FROM'],
      ['nginx:mainline-alpine', 'runtime', 5, 'FROM'],
    ],
    final: { index: 1, runtime: 'nginx:mainline-alpine' },
  },
  'osrf+docker_images__ros2__source__source__Dockerfile.Dockerfile': {
    uses: [['osrf/ros2:devel', 'runtime', 3, 'FROM']],
    final: { index: 0, runtime: 'osrf/ros2:devel' },
  },
  'percona+percona-docker__postgresql-containers__build__postgres-gis__Dockerfile.Dockerfile': {
    uses: [['perconalab/percona-postgresql-operator:main-ppg14-postgres', 'runtime', 5, 'FROM']],
    final: { index: 0, runtime: 'perconalab/percona-postgresql-operator:main-ppg14-postgres' },
  },
};

/** The six samples docker-library/official-images builds, and the tag bashbrew's lineage lists for each. */
const OFFICIAL_TAGS: Record<string, string> = {
  'docker-library+golang__tip__trixie__Dockerfile.Dockerfile': 'golang:tip-trixie',
  'docker-library+golang__1.26__windows__nanoserver-ltsc2025__Dockerfile.Dockerfile': 'golang:1.26.1-nanoserver-ltsc2025',
  'carlossg+docker-maven__eclipse-temurin-21-alpine__Dockerfile.Dockerfile': 'maven:3.9.14-eclipse-temurin-21-alpine',
  'docker-library+buildpack-deps__debian__bookworm__scm__Dockerfile.Dockerfile': 'buildpack-deps:bookworm-scm',
  'docker-library+docker__29__dind-rootless__Dockerfile.Dockerfile': 'docker:29-dind-rootless',
  'erlef+docker-elixir__1.15__Dockerfile.Dockerfile': 'elixir:1.15',
};

function tsvParents(file: string, child: string): string[] {
  return readFileSync(join(LINEAGE, file), 'utf8')
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([c]) => c === child)
    .map(([, parent]) => parent)
    .sort();
}

describe('Function: parseDockerfileParents', () => {
  describe('real Dockerfiles (shared/data/dockerfiles)', () => {
    const samples = readdirSync(DOCKERFILES).filter((f) => f.endsWith('.Dockerfile'));

    it('has an expectation for every sample file', () => {
      expect(samples.sort()).toEqual(Object.keys(EXPECTED).sort());
    });

    it.each(samples)('resolves %s', (name) => {
      const expected = EXPECTED[name];
      if ('unknownArg' in expected) {
        const error = captureError(() => parseSample(name));
        expect(error).toBeInstanceOf(DockerfileUnknownArgError);
        expect((error as DockerfileUnknownArgError).variable).toBe(expected.unknownArg);
        expect((error as DockerfileUnknownArgError).line).toBe(expected.line);
        expect(error.message).toContain(`${name}:${expected.line}`);
        return;
      }
      const result = parseSample(name);
      expect(uses(result)).toEqual(expected.uses);
      expect(result.finalStage).toMatchObject(expected.final);
      expect(result.finalStage.name).toBe(expected.final.name);
      // Edges: one per image, the runtime parent first.
      const images = [...new Set(expected.uses.map(([image]) => image))];
      expect(result.edges.map((e) => e.image).sort()).toEqual(images.sort());
      expect(result.edges[0]).toEqual({ image: expected.final.runtime, role: 'runtime' });
      expect(result.edges.slice(1).every((e) => e.role === 'build')).toBe(true);
    });

    it.each(Object.entries(OFFICIAL_TAGS))('agrees with bashbrew on the parents of %s', (name, tag) => {
      const result = parseSample(name);
      expect(result.edges.filter((e) => e.role === 'runtime').map((e) => e.image)).toEqual(tsvParents('official-images-edges.tsv', tag));
      expect(result.edges.map((e) => e.image).sort()).toEqual(tsvParents('official-images-edges-allfroms.tsv', tag));
    });

    it('keeps digest pins: digest-only stays in the key, tag+digest keys by tag', () => {
      const rpm = parseSample('Kong+docker-kong__Dockerfile.rpm.Dockerfile').parents[0];
      expect(rpm.reference).toBe(`registry.access.redhat.com/ubi9-minimal@${SHA_UBI}`);
      expect(rpm.digest).toBe(SHA_UBI);
      const haskell = parseSample('haskell+docker-haskell__9.0__buster__Dockerfile.Dockerfile').parents[0];
      expect(haskell.reference).toBe(`buildpack-deps:buster@${SHA_BUSTER}`);
      expect(haskell.image).toBe('buildpack-deps:buster');
      expect(haskell.digest).toBe(SHA_BUSTER);
      const clickhouse = parseSample('ClickHouse+docker-library__server__26.3.17.110__Dockerfile.distroless.Dockerfile');
      expect(clickhouse.parents.map((p) => p.digest)).toEqual([undefined, SHA_CH_PROD, SHA_CH_DEBUG]);
    });

    it('keeps --platform as information, out of the reference', () => {
      const fluent = parseSample('fluent+fluentd-docker-image__v1.16__arm64__debian__Dockerfile.Dockerfile');
      expect(fluent.parents[1]).toMatchObject({ reference: 'arm64v8/ruby:3.2-slim-bookworm', platform: 'linux/arm64' });
      expect(fluent.parents[0].platform).toBeUndefined();
      expect(fluent.stages[1].platform).toBe('linux/arm64');
    });

    it('returns the reference as written after substitution', () => {
      const percona = parseSample('percona+percona-docker__postgresql-containers__build__postgres-gis__Dockerfile.Dockerfile');
      expect(percona.parents[0].reference).toBe('perconalab/percona-postgresql-operator:main-ppg14-postgres');
    });

    it('lets build args win over ARG defaults', () => {
      const nginx = parseSample('nginx+docker-nginx__modules__Dockerfile.Dockerfile', { NGINX_FROM_IMAGE: 'nginx:1.27.4-alpine' });
      expect(nginx.edges).toEqual([{ image: 'nginx:1.27.4-alpine', role: 'runtime' }]);
      const percona = parseSample('percona+percona-docker__postgresql-containers__build__postgres-gis__Dockerfile.Dockerfile', {
        PG_MAJOR: '17',
        ORG_NAME: 'percona',
      });
      expect(percona.finalStage.runtime).toBe('percona/percona-postgresql-operator:main-ppg17-postgres');
    });

    it('resolves an ARG without default once a build arg gives it', () => {
      const result = parseSample('Kong+docker-kong__kong-build-tools__test__Dockerfile.test.Dockerfile', {
        DOCKER_REPOSITORY: 'kong/kong-build-tools',
        DOCKER_OPENRESTY_SUFFIX: '1.21.4.1',
      });
      expect(result.edges).toEqual([{ image: 'kong/kong-build-tools:test-1.21.4.1', role: 'runtime' }]);
    });

    it('refuses build args for ARGs the file never declares, as Docker ignores them', () => {
      const error = captureError(() =>
        parseSample('Lightstreamer+Docker__Dockerfile.template.Dockerfile', { JAVA_VERSION: '21', FLAVOR: 'jre' }),
      );
      expect(error).toBeInstanceOf(DockerfileUnknownArgError);
      expect(error.message).toMatch(/JAVA_VERSION.*Docker ignores build args that no ARG declares/);
    });

    it('selects another stage with target', () => {
      const result = parseDockerfileParents(readSample('ClickHouse+docker-library__server__26.3.17.110__Dockerfile.distroless.Dockerfile'), {
        target: 'production',
      });
      expect(result.finalStage).toMatchObject({ index: 1, name: 'production', runtime: 'gcr.io/distroless/cc-debian13:nonroot' });
      expect(result.parents.map((p) => p.role)).toEqual(['build', 'runtime', 'build']);
    });
  });

  describe('substitution', () => {
    const cases: Array<[string, string, Record<string, string> | undefined, string]> = [
      ['${VAR}', 'ARG VAR=alpine:3.20', undefined, 'alpine:3.20'],
      ['$VAR', 'ARG VAR=alpine:3.20', undefined, 'alpine:3.20'],
      ['${VAR:-default} with no default', 'ARG VAR', undefined, 'debian:bookworm'],
      ['${VAR:-default} with a default', 'ARG VAR=trixie', undefined, 'debian:trixie'],
      ['${VAR:-default} with a build arg', 'ARG VAR', { VAR: 'sid' }, 'debian:sid'],
      ['${VAR:+x} unset', 'ARG VAR', undefined, 'debian:bookworm'],
      ['${VAR:+x} set', 'ARG VAR=1', undefined, 'debian:bookworm-slim'],
      ['quoted ARG default', 'ARG VAR="alpine:3.20"', undefined, 'alpine:3.20'],
      ['ARG default naming an earlier ARG', 'ARG V=3.20\nARG VAR=alpine:${V}', undefined, 'alpine:3.20'],
      ['several ARGs on one line', 'ARG REG=quay.io VAR=${REG}/prometheus/node-exporter:v1.8.2', undefined, 'quay.io/prometheus/node-exporter:v1.8.2'],
    ];
    const froms: Record<string, string> = {
      '${VAR}': 'FROM ${VAR}',
      $VAR: 'FROM $VAR',
      '${VAR:-default} with no default': 'FROM debian:${VAR:-bookworm}',
      '${VAR:-default} with a default': 'FROM debian:${VAR:-bookworm}',
      '${VAR:-default} with a build arg': 'FROM debian:${VAR:-bookworm}',
      '${VAR:+x} unset': 'FROM debian:bookworm${VAR:+-slim}',
      '${VAR:+x} set': 'FROM debian:bookworm${VAR:+-slim}',
      'quoted ARG default': 'FROM ${VAR}',
      'ARG default naming an earlier ARG': 'FROM ${VAR}',
      'several ARGs on one line': 'FROM $VAR',
    };

    it.each(cases)('substitutes %s', (label, args, buildArgs, expected) => {
      const result = parseDockerfileParents(`${args}\n${froms[label]}\n`, { buildArgs });
      expect(result.finalStage.runtime).toBe(expected);
    });

    it('expands a nested default only when it is used', () => {
      const text = 'ARG A\nARG B=ubuntu:24.04\nFROM ${A:-${B}}\n';
      expect(parseDockerfileParents(text).finalStage.runtime).toBe('ubuntu:24.04');
      // C is unset, but A is given, so the default is never read.
      expect(parseDockerfileParents('ARG A\nFROM ${A:-$C}\n', { buildArgs: { A: 'ubuntu:22.04' } }).finalStage.runtime).toBe('ubuntu:22.04');
    });

    it('uses only ARGs declared before the first FROM in FROM', () => {
      const text = 'FROM alpine:3.20 AS one\nARG LATE=debian:bookworm\nFROM ${LATE}\n';
      const error = captureError(() => parseDockerfileParents(text, { file: 'late/Dockerfile' }));
      expect(error).toBeInstanceOf(DockerfileUnknownArgError);
      expect(error.message).toBe(
        'late/Dockerfile:3: ARG LATE is not declared by an ARG in scope (a FROM sees only ARGs before the first FROM)',
      );
    });

    it('expands --platform with known ARGs and keeps BuildKit platform variables as written', () => {
      const text = 'ARG ARCH=arm64\nFROM --platform=linux/${ARCH} alpine:3.20 AS a\nFROM --platform=$BUILDPLATFORM golang:1.22\n';
      const result = parseDockerfileParents(text);
      expect(result.parents.map((p) => p.platform)).toEqual(['linux/arm64', '']);
      const given = parseDockerfileParents(text, { buildArgs: { BUILDPLATFORM: 'linux/amd64' } });
      expect(given.parents.map((p) => p.platform)).toEqual(['linux/arm64', 'linux/amd64']);
    });

    it('resolves a BuildKit platform ARG in a reference from build args', () => {
      const text = 'FROM --platform=$TARGETPLATFORM ghcr.io/acme/base-${TARGETARCH}:1\n';
      expect(parseDockerfileParents(text, { buildArgs: { TARGETARCH: 'arm64' } }).finalStage.runtime).toBe('ghcr.io/acme/base-arm64:1');
      const error = captureError(() => parseDockerfileParents(text));
      expect(error).toBeInstanceOf(DockerfileUnknownArgError);
      expect(error.message).toContain('TARGETARCH is set by BuildKit from the build platform');
    });
  });

  describe('stages', () => {
    it('follows a chain of stage aliases back to the runtime image', () => {
      const text = [
        'FROM python:3.12-slim AS base',
        'FROM base AS deps',
        'COPY --from=ghcr.io/astral-sh/uv:0.5.11 /uv /bin/uv',
        'FROM node:22 AS assets',
        'FROM deps',
        'COPY --from=assets /app/dist /app/static',
        'COPY --from=0 /etc/os-release /tmp/',
      ].join('\n');
      const result = parseDockerfileParents(text);
      expect(uses(result)).toEqual([
        ['python:3.12-slim', 'runtime', 1, 'FROM'],
        ['ghcr.io/astral-sh/uv:0.5.11', 'build', 3, 'COPY --from'],
        ['node:22', 'build', 4, 'FROM'],
      ]);
      expect(result.stages.map((s) => s.base)).toEqual([
        { kind: 'image', image: 'python:3.12-slim' },
        { kind: 'stage', stage: 0 },
        { kind: 'image', image: 'node:22' },
        { kind: 'stage', stage: 1 },
      ]);
      expect(result.finalStage).toEqual({ index: 3, line: 5, runtime: 'python:3.12-slim', scratch: false });
    });

    it('matches stage aliases case-insensitively, with lower-case keywords', () => {
      const text = 'from golang:1.23 as Builder\nfrom Builder AS final\ncopy --from=BUILDER /out /out\n';
      const result = parseDockerfileParents(text);
      expect(uses(result)).toEqual([['golang:1.23', 'runtime', 1, 'FROM']]);
      expect(result.stages.map((s) => s.name)).toEqual(['builder', 'final']);
    });

    it('gives a final stage FROM scratch no runtime parent', () => {
      const text = 'FROM golang:1.23 AS build\nFROM scratch\nCOPY --from=build /app /app\n';
      const result = parseDockerfileParents(text);
      expect(result.edges).toEqual([{ image: 'golang:1.23', role: 'build' }]);
      expect(result.finalStage).toEqual({ index: 1, line: 2, scratch: true });
      expect(result.stages[1].base).toEqual({ kind: 'scratch' });
    });

    it('gives a stage chain ending at scratch no runtime parent', () => {
      const result = parseDockerfileParents('FROM scratch AS root\nFROM root\n');
      expect(result.parents).toEqual([]);
      expect(result.finalStage.scratch).toBe(true);
    });

    it('reads RUN --mount from= as a build parent, and a mounted stage as no parent', () => {
      const text = [
        'FROM alpine:3.20 AS files',
        'FROM debian:bookworm-slim',
        'RUN --mount=type=bind,from=golang:1.23,source=/usr/local/go,target=/go --mount=type=cache,target=/root/.cache true',
        'RUN --mount=type=bind,from=files,target=/files true',
      ].join('\n');
      expect(uses(parseDockerfileParents(text))).toEqual([
        ['alpine:3.20', 'build', 1, 'FROM'],
        ['debian:bookworm-slim', 'runtime', 2, 'FROM'],
        ['golang:1.23', 'build', 3, 'RUN --mount'],
      ]);
    });

    it('expands ARGs of the stage in COPY --from', () => {
      const text = 'ARG TOOLS=ghcr.io/acme/tools:2.1\nFROM alpine:3.20\nARG TOOLS\nCOPY --from=${TOOLS} /bin/tool /bin/tool\n';
      expect(parseDockerfileParents(text).edges).toEqual([
        { image: 'alpine:3.20', role: 'runtime' },
        { image: 'ghcr.io/acme/tools:2.1', role: 'build' },
      ]);
    });

    it('ignores ONBUILD triggers, which act on child images', () => {
      const result = parseDockerfileParents('FROM node:22\nONBUILD COPY --from=busybox:1.36 /bin/sh /bin/sh\n');
      expect(result.edges).toEqual([{ image: 'node:22', role: 'runtime' }]);
    });

    it('keys an internal repository by its name', () => {
      const text = 'FROM 123456789012.dkr.ecr.eu-west-1.amazonaws.com/enterprise/python-311:1.4\n';
      const result = parseDockerfileParents(text, {
        isInternal: (repository) => repository === '123456789012.dkr.ecr.eu-west-1.amazonaws.com/enterprise/python-311',
      });
      expect(result.finalStage.runtime).toBe('123456789012.dkr.ecr.eu-west-1.amazonaws.com/enterprise/python-311');
    });
  });

  describe('Windows', () => {
    it('reads a Dockerfile with the backtick escape directive', () => {
      const text = [
        '# escape=`',
        'ARG WINDOWS_VERSION=ltsc2022',
        'FROM mcr.microsoft.com/windows/servercore:${WINDOWS_VERSION} AS build',
        'FROM mcr.microsoft.com/windows/nanoserver:`',
        '${WINDOWS_VERSION}',
        'COPY --from=build C:\\go C:\\go',
      ].join('\r\n');
      const result = parseDockerfileParents(text);
      expect(uses(result)).toEqual([
        ['mcr.microsoft.com/windows/servercore:ltsc2022', 'build', 3, 'FROM'],
        ['mcr.microsoft.com/windows/nanoserver:ltsc2022', 'runtime', 4, 'FROM'],
      ]);
    });
  });

  describe('failures', () => {
    it('fails with DockerfileNoFromError when there is no FROM', () => {
      for (const text of ['', '# just a comment\nARG X=1\n', 'RUN echo hi\n']) {
        const error = captureError(() => parseDockerfileParents(text, { file: 'app/Dockerfile' }));
        expect(error).toBeInstanceOf(DockerfileNoFromError);
        expect(error).toMatchObject({ name: 'DockerfileNoFromError', code: 'DOCKERFILE_NO_FROM' });
        expect(error.message).toContain('app/Dockerfile');
      }
    });

    it('fails with DockerfileUnknownArgError naming the variable and line', () => {
      const error = captureError(() => parseDockerfileParents('ARG BASE\n\nFROM ${BASE}\n', { file: 'svc/Containerfile' }));
      expect(error).toBeInstanceOf(DockerfileUnknownArgError);
      expect(error).toMatchObject({ code: 'DOCKERFILE_UNKNOWN_ARG', variable: 'BASE', line: 3, file: 'svc/Containerfile' });
      expect(error.message).toBe('svc/Containerfile:3: ARG BASE is declared without a default and no build arg gives it a value');
    });

    it('fails on ${VAR:?message} when VAR is unset', () => {
      const error = captureError(() => parseDockerfileParents('ARG BASE\nFROM ${BASE:?required}\n'));
      expect(error).toBeInstanceOf(DockerfileUnknownArgError);
      expect((error as DockerfileUnknownArgError).variable).toBe('BASE');
    });

    it('fails with DockerfileInvalidReferenceError wrapping InvalidImageReferenceError', () => {
      const error = captureError(() => parseDockerfileParents('ARG IMAGE=Ubuntu:22.04\nFROM $IMAGE\n', { file: 'x/Dockerfile' }));
      expect(error).toBeInstanceOf(DockerfileInvalidReferenceError);
      expect(error).toMatchObject({ code: 'DOCKERFILE_INVALID_REFERENCE', line: 2, reference: 'Ubuntu:22.04' });
      expect(error.cause).toBeInstanceOf(InvalidImageReferenceError);
      expect(error.message).toMatch(/^x\/Dockerfile:2: invalid image reference "Ubuntu:22.04"/);
    });

    it('fails on an invalid COPY --from image', () => {
      const error = captureError(() => parseDockerfileParents('FROM alpine:3.20\nCOPY --from=bad@sha256:123 /a /a\n'));
      expect(error).toBeInstanceOf(DockerfileInvalidReferenceError);
      expect((error as DockerfileInvalidReferenceError).line).toBe(2);
    });

    it('fails with DockerfileSyntaxError on a malformed FROM', () => {
      for (const [text, pattern] of [
        ['FROM\n', /FROM names no image/],
        ['FROM alpine:3.20 builder\n', /FROM takes "image \[AS name\]"/],
        ['ARG EMPTY=""\nFROM ${EMPTY}\n', /expands to an empty image name/],
        ['ARG V=a\nFROM ${V/a/b}\n', /unsupported substitution/],
        ['FROM ${V\n', /unterminated/],
      ] as const) {
        const error = captureError(() => parseDockerfileParents(text));
        expect(error).toBeInstanceOf(DockerfileSyntaxError);
        expect(error.message).toMatch(pattern);
      }
    });

    it('fails with DockerfileStageReferenceError on a stage index that does not exist yet', () => {
      const error = captureError(() => parseDockerfileParents('FROM alpine:3.20\nCOPY --from=1 /a /a\nFROM alpine:3.20\n'));
      expect(error).toBeInstanceOf(DockerfileStageReferenceError);
      expect(error.message).toMatch(/^Dockerfile:2: --from=1 names no earlier stage/);
    });

    it('fails with DockerfileStageReferenceError when a stage copies from itself', () => {
      const error = captureError(() => parseDockerfileParents('FROM alpine:3.20 AS me\nCOPY --from=me /a /b\n'));
      expect(error).toBeInstanceOf(DockerfileStageReferenceError);
    });

    it('fails with DockerfileUnknownTargetError on an unknown target', () => {
      const error = captureError(() => parseDockerfileParents('FROM alpine:3.20 AS build\nFROM build\n', { target: 'release' }));
      expect(error).toBeInstanceOf(DockerfileUnknownTargetError);
      expect(error.message).toContain('stages: build');
    });
  });
});
