export * from '@authmd/core/redis';
