// The preload of every console window: exposes window.strata (StrataBridge) and nothing else. It runs
// sandboxed, so scripts/build-electron.mjs bundles it into one CommonJS file that requires only 'electron'.
import { contextBridge, ipcRenderer } from 'electron';
import { BRIDGE_GLOBAL } from '../agent-core/api/bridge.js';
import { createBridge } from './preload-bridge.js';

contextBridge.exposeInMainWorld(BRIDGE_GLOBAL, createBridge(ipcRenderer));
