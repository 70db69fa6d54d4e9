// The slots of one application mount: how many exchanges run at once (max_processes,
// max_conns) and how many may wait for one (max_queue). A mount the native client also
// serves keeps one pool for both paths in the addon (NativeSlots, native/fastcgi_slots.cc),
// so that its limits hold whichever path a request takes; otherwise the runner counts its
// own (LocalSlots). Waiters get their slot in arrival order.
import type { NativeServer } from './native.js';

/** A slot asked for: granted (the exchange may run) or waiting; release() frees or withdraws it, once. */
export interface Slot {
  readonly granted: boolean;
  release(): void;
}

export interface SlotPool {
  /** A granted slot, a waiting one (onGrant runs when it is granted), or null: the queue is full. */
  acquire(onGrant: () => void): Slot | null;
}

class PooledSlot implements Slot {
  #state: 'granted' | 'waiting' | 'released';
  constructor(granted: boolean, readonly onGrant: () => void, readonly onRelease: (s: PooledSlot, wasGranted: boolean) => void) {
    this.#state = granted ? 'granted' : 'waiting';
  }

  get granted(): boolean {
    return this.#state === 'granted';
  }

  grant(): void {
    if (this.#state !== 'waiting') return;
    this.#state = 'granted';
    this.onGrant();
  }

  release(): void {
    if (this.#state === 'released') return;
    const wasGranted = this.#state === 'granted';
    this.#state = 'released';
    this.onRelease(this, wasGranted);
  }
}

export class LocalSlots implements SlotPool {
  #running = 0;
  #waiting: PooledSlot[] = [];
  #pumping = false;

  constructor(readonly maxRunning: number, readonly maxQueue: number) {}

  acquire(onGrant: () => void): Slot | null {
    const now = this.#running < this.maxRunning && this.#waiting.length === 0;
    if (!now && this.#waiting.length >= this.maxQueue) return null;
    const slot = new PooledSlot(now, onGrant, (s, wasGranted) => this.#release(s, wasGranted));
    if (now) this.#running++;
    else this.#waiting.push(slot);
    return slot;
  }

  #release(slot: PooledSlot, wasGranted: boolean): void {
    if (!wasGranted) {
      this.#waiting = this.#waiting.filter((s) => s !== slot);
      return;
    }
    this.#running--;
    if (this.#pumping) return; // the loop below takes the freed slot
    this.#pumping = true;
    try {
      while (this.#running < this.maxRunning && this.#waiting.length > 0) {
        this.#running++;
        this.#waiting.shift()!.grant();
      }
    } finally {
      this.#pumping = false;
    }
  }
}

/** The native client's pool of mount `mount` (FcgiDispatch::acquireSlot); grant() takes handlers.slot. */
export class NativeSlots implements SlotPool {
  readonly #waiting = new Map<number, PooledSlot>();

  constructor(readonly server: Pick<NativeServer, 'appSlot' | 'appSlotRelease'>, readonly mount: number) {}

  acquire(onGrant: () => void): Slot | null {
    const t = this.server.appSlot(this.mount);
    if (t === 0) return null;
    const ticket = Math.abs(t);
    const slot = new PooledSlot(t > 0, onGrant, () => {
      this.#waiting.delete(ticket);
      this.server.appSlotRelease(ticket);
    });
    if (t < 0) this.#waiting.set(ticket, slot);
    return slot;
  }

  /** A waiting ticket of this pool got its slot: true when it was this pool's. */
  grant(ticket: number): boolean {
    const slot = this.#waiting.get(ticket);
    if (slot === undefined) return false;
    this.#waiting.delete(ticket);
    slot.grant();
    return true;
  }
}
