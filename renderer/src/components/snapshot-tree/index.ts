// The snapshot tree's public surface: the component and its layout helpers.
export { SnapshotTree, type SnapshotTreeProps } from './snapshot-tree.js';
export { buildForest, chainStatus, flattenForest, nextSelection, DEFAULT_CHAIN_LIMIT } from './tree-layout.js';
