// The ES2025 Set methods (union, intersection, …), which Node.js ships
// from version 22, for Node.js 20: gitlab-ci-local 4.75 calls them. Loaded
// with NODE_OPTIONS=--require by the pipeline test; a method Node already
// has is left as it is.
"use strict";
const define = (name, fn) => {
  if (!Set.prototype[name]) {
    Object.defineProperty(Set.prototype, name, { value: fn, writable: true, configurable: true });
  }
};
const keysOf = (other) => other.keys();
define("union", function (other) {
  const out = new Set(this);
  for (const k of keysOf(other)) out.add(k);
  return out;
});
define("intersection", function (other) {
  const out = new Set();
  for (const k of this) if (other.has(k)) out.add(k);
  return out;
});
define("difference", function (other) {
  const out = new Set();
  for (const k of this) if (!other.has(k)) out.add(k);
  return out;
});
define("symmetricDifference", function (other) {
  const out = new Set(this);
  for (const k of keysOf(other)) {
    if (this.has(k)) out.delete(k);
    else out.add(k);
  }
  return out;
});
define("isSubsetOf", function (other) {
  for (const k of this) if (!other.has(k)) return false;
  return true;
});
define("isSupersetOf", function (other) {
  for (const k of keysOf(other)) if (!this.has(k)) return false;
  return true;
});
define("isDisjointFrom", function (other) {
  for (const k of this) if (other.has(k)) return false;
  return true;
});
