export * from '../../../conformance/src/human/browser.ts';
