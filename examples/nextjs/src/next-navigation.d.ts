// The repository type-checks with NodeNext resolution, which wants `next/navigation.js` from a package
// without an exports map (next); Next wants the bare `next/navigation`, which it maps to its own
// build of the module (the file itself fails to load in a route). This names the one for the other.
declare module 'next/navigation' {
  export * from 'next/navigation.js';
}
