import { canonicalImageRef, formatImageRef, InvalidImageReferenceError, isRepositoryName, parseImageRef } from '../../lambdas/domain/image-ref';

describe('Function: parseImageRef', () => {
  it('normalizes Docker Hub short names', () => {
    expect(parseImageRef('python:3.11')).toEqual({ registry: 'docker.io', repository: 'library/python', tag: '3.11', digest: undefined });
    expect(canonicalImageRef(parseImageRef('python:3.11'))).toBe('docker.io/library/python:3.11');
    expect(formatImageRef(parseImageRef('docker.io/library/python:3.11'))).toBe('python:3.11');
    expect(formatImageRef(parseImageRef('index.docker.io/bitnami/redis'))).toBe('bitnami/redis:latest');
  });

  it('keeps registries with ports, tags and digests', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseImageRef(`localhost:5000/team/app:1.0@${digest}`)).toEqual({ registry: 'localhost:5000', repository: 'team/app', tag: '1.0', digest });
    expect(parseImageRef('registry.access.redhat.com/ubi9/python-311:1-34')).toEqual({
      registry: 'registry.access.redhat.com',
      repository: 'ubi9/python-311',
      tag: '1-34',
      digest: undefined,
    });
    expect(formatImageRef(parseImageRef(`alpine@${digest}`))).toBe(`alpine@${digest}`);
  });

  it.each([
    ['', 'empty'],
    ['Python:3.11', 'repository component'],
    ['python:3.11 ; rm -rf /', 'whitespace'],
    ['python:$(id)', 'tag'],
    ['python@sha256:abc', 'digest'],
    [`python:${'a'.repeat(129)}`, 'tag'],
    ['a/../b', 'repository component'],
    ['python:3\n11', 'whitespace'],
  ])('refuses %j (%s)', (reference, reason) => {
    expect(() => parseImageRef(reference)).toThrow(InvalidImageReferenceError);
    expect(() => parseImageRef(reference)).toThrow(reason);
  });
});

describe('Function: isRepositoryName', () => {
  it('accepts ECR names and refuses the rest', () => {
    expect(isRepositoryName('enterprise/python-311')).toBe(true);
    expect(isRepositoryName('a')).toBe(false);
    expect(isRepositoryName('apps/$(whoami)')).toBe(false);
    expect(isRepositoryName('Apps/x')).toBe(false);
  });
});
