export * from '@authmd/core/store/testing';
