// The interface the backup engine uses to ask a live tracker what changed on one block device
// since the last backup, and whether it can vouch for the answer (seed 003's epoch key).
//
//   interface LiveTracker {
//     readonly device: TrackedDevice;          // path, disk, start sector, size
//     readonly backend: 'bpf' | 'bpftrace' | 'tracefs';
//     epochKey(): string;                      // the key of the epoch being recorded now
//     status(): TrackerStatus;                 // tracking | blind | closed, restarts, open blind window
//     takeAndReset(): Promise<EpochTake>;      // close the epoch, start the next
//     peekChanges(): Extent[];                 // what the epoch holds so far, without ending it
//     close(): Promise<void>;                  // stop the probe, undo kernel state
//   }
//
// Epochs and keys. An epoch is a stretch of time in which the tracker saw every write to the
// device. Its key is 128 random bits held only in this process's memory: a new key at every attach
// of the probe, at every gap (probe crash, lost events) and at every take. takeAndReset() returns
// the changes of the epoch that ends now under `previousEpochKey` and the key of the epoch that
// starts now as `epochKey`. The engine stores `epochKey` with the snapshot it is about to read; at
// the next backup it may use `changes` only if the take's `previousEpochKey` equals the stored key
// and `gapReason` is null. Any other answer (agent restart, reboot, probe crash, dropped events)
// means the changes are incomplete: read the valid blocks, hash, store the deltas (a resync). A
// take made while the probe is down also starts the next epoch blind, so the next take reports a
// gap as well.
//
// Atomicity. takeAndReset() first drains the probe (a barrier: every event the kernel emitted
// before the call has been applied), then, in one synchronous step, swaps the change map for an
// empty one and rotates the key. Events parsed after the swap land in the next epoch. Writes still
// in flight at the swap are marked in both epochs (every backend marks at queue and completion;
// bpf-probe.ts says how it covers a completion event the kernel skipped).
import type { Extent } from '../../agent-core/extents.js';
import type { ChangeMap } from '../../agent-core/tracker/change-map.js';
import type { ProbeBackendName } from './probe.js';
import type { TrackedDevice } from './tracked-device.js';

/** From a probe's crash (or its dropped events) to the moment a new probe proved it was attached. */
export interface BlindWindow {
  readonly fromMs: number;
  /** Undefined while the window is still open. */
  readonly toMs: number | undefined;
  readonly reason: string;
}

export interface EpochTake {
  /** The key of the epoch that starts now; store it with the snapshot taken from this point. */
  readonly epochKey: string;
  /** The key the returned changes were recorded under; equals the previous take's epochKey iff nothing was missed. */
  readonly previousEpochKey: string;
  /** Blocks written, discarded or zeroed during the epoch (4 KiB granularity, rounded outward). */
  readonly changes: ChangeMap;
  /** Null when the tracker saw every write of the epoch; otherwise why it may not have (resync). */
  readonly gapReason: string | null;
  /** The blind windows that fell in the epoch, the last possibly still open. */
  readonly blindWindows: readonly BlindWindow[];
  /** Cache flushes seen in the epoch (noted, not used for the map). */
  readonly flushes: number;
  /**
   * Bytes of `changes` marked again, not because they were written in this epoch but because a
   * write in flight across the previous take may have lost its completion mark (carry-over.ts).
   */
  readonly remarkedBytes: number;
}

export type TrackerState = 'tracking' | 'blind' | 'closed';

export interface TrackerStatus {
  readonly state: TrackerState;
  readonly backend: ProbeBackendName;
  /** Probe restarts after a crash, since the tracker started. */
  readonly restarts: number;
  readonly probePid: number | undefined;
  readonly blindSinceMs: number | undefined;
}

export interface LiveTracker {
  readonly device: TrackedDevice;
  readonly backend: ProbeBackendName;
  epochKey(): string;
  status(): TrackerStatus;
  takeAndReset(): Promise<EpochTake>;
  /** The blocks marked so far in the current epoch, without ending it (for the console's map). */
  peekChanges(): Extent[];
  close(): Promise<void>;
}
