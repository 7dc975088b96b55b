/**
 * The task index's table: per task only what listings filter and order on and
 * what retention and the sweeper ask (id, status, name, hosts, end time), in
 * typed arrays with interned names, so 100,000 tasks cost a few MB rather than
 * a decoded summary each (~2 KB, far more for a batch's host list).
 *
 * A task lives in a slot (its columns' index), stable while it is kept. Slots
 * are ordered by id in `order`, and per host in that host's own list, so a
 * listing walks newest first from the end of one list, and a deep page costs
 * a pass over typed arrays, not a sort. No I/O here.
 */
import type { OcpTask } from '../contracts/ocp-task.js';
import type { TaskFilter } from '../tasks/ports.js';

/** What the table keeps of a task. */
export interface TaskRow {
  id: number;
  status: OcpTask['status'];
  name: string;
  /** Who asked for it (`alice`, `slack:U…`, `nats:…`); undefined in rows made before it was kept. */
  creator?: string;
  /** Its host first, then the rest of its batch's, each once. */
  hostIds: readonly number[];
  /** When it ended (epoch ms); undefined while it runs, or when its record says no time. */
  endedAt: number | undefined;
}

const STATUS_CODE = { RUNNING: 1, FAILED: 2, SUCCESSFUL: 3 } as const;
const FREE = 0;
const RUNNING = STATUS_CODE.RUNNING;
/** The creator column of a row that names none. */
const NO_CREATOR = 0xffffffff;

/** A growable list of slots kept in id order. */
class SlotList {
  items = new Uint32Array(4);
  length = 0;

  /** Position of the first slot whose id is ≥ `id`. */
  lowerBound(id: number, ids: Float64Array): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ids[this.items[mid] as number] as number) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  push(slot: number): void {
    if (this.length === this.items.length) {
      const grown = new Uint32Array(this.items.length * 2);
      grown.set(this.items);
      this.items = grown;
    }
    this.items[this.length++] = slot;
  }

  /** Insert in id order: at the end, without moving anything, for a newer id than any (the usual case). */
  insert(slot: number, ids: Float64Array): void {
    const at = this.lowerBound(ids[slot] as number, ids);
    this.push(slot);
    if (at < this.length - 1) {
      this.items.copyWithin(at + 1, at, this.length - 1);
      this.items[at] = slot;
    }
  }

  remove(slot: number, ids: Float64Array): void {
    const at = this.lowerBound(ids[slot] as number, ids);
    if (at >= this.length || this.items[at] !== slot) return;
    this.items.copyWithin(at, at + 1, this.length);
    this.length--;
  }

  /** Put the slots (pushed in any order) in id order, leaving out those `gone` says. */
  sort(ids: Float64Array, gone: (slot: number) => boolean): void {
    let kept = 0;
    for (let i = 0; i < this.length; i++) {
      const slot = this.items[i] as number;
      if (!gone(slot)) this.items[kept++] = slot;
    }
    this.length = kept;
    this.items.subarray(0, kept).sort((a, b) => (ids[a] as number) - (ids[b] as number));
  }
}

function grown<T extends Float64Array | Uint32Array | Uint8Array>(a: T, size: number): T {
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}

const sameHosts = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((h, i) => h === b[i]);

export class TaskTable {
  private ids = new Float64Array(1024);
  private statuses = new Uint8Array(1024);
  private names = new Uint32Array(1024);
  /** Interned like names: a creator's index, or NO_CREATOR. */
  private creators = new Uint32Array(1024);
  private ended = new Float64Array(1024);
  /** Each task's host; the others of a batch in `moreHosts`. */
  private host = new Float64Array(1024);
  private moreHosts = new Map<number, number[]>();
  private free: number[] = [];
  private used = 0;
  private readonly order = new SlotList();
  private readonly byHost = new Map<number, SlotList>();
  /** Creators interned, as names are. */
  private readonly creatorIds = new Map<string, number>();
  /** Names interned: a task holds the index of its name. */
  private readonly nameIds = new Map<string, number>();
  /**
   * While loading, slots are appended unordered and found by id here; `loaded`
   * puts them in order at once (inserting 100,000 ids one by one in the
   * order the store delivers them would move the lists each time). A slot
   * deleted meanwhile stays in the lists, FREE, until then.
   */
  private loading: Map<number, number> | undefined;
  private freedWhileLoading: number[] = [];

  constructor(opts: { loading?: boolean } = {}) {
    if (opts.loading) this.loading = new Map();
  }

  get size(): number {
    return this.order.length;
  }

  /** Ends loading: every list in id order. */
  loaded(): void {
    if (!this.loading) return;
    this.loading = undefined;
    const gone = (slot: number) => this.statuses[slot] === FREE;
    this.order.sort(this.ids, gone);
    for (const [h, list] of this.byHost) {
      list.sort(this.ids, gone);
      if (list.length === 0) this.byHost.delete(h);
    }
    this.free.push(...this.freedWhileLoading);
    this.freedWhileLoading = [];
  }

  private slotOf(id: number): number | undefined {
    if (this.loading) return this.loading.get(id);
    const at = this.order.lowerBound(id, this.ids);
    const slot = this.order.items[at];
    return at < this.order.length && slot !== undefined && this.ids[slot] === id ? slot : undefined;
  }

  private nameId(name: string): number {
    let n = this.nameIds.get(name);
    if (n === undefined) {
      n = this.nameIds.size;
      this.nameIds.set(name, n);
    }
    return n;
  }

  private creatorId(creator: string): number {
    let n = this.creatorIds.get(creator);
    if (n === undefined) {
      n = this.creatorIds.size;
      this.creatorIds.set(creator, n);
    }
    return n;
  }

  private hostsOf(slot: number): number[] {
    return [this.host[slot] as number, ...(this.moreHosts.get(slot) ?? [])];
  }

  private listOf(hostId: number): SlotList {
    let list = this.byHost.get(hostId);
    if (!list) {
      list = new SlotList();
      this.byHost.set(hostId, list);
    }
    return list;
  }

  private link(slot: number, hostIds: readonly number[]): void {
    this.host[slot] = hostIds[0] ?? 0;
    if (hostIds.length > 1) this.moreHosts.set(slot, hostIds.slice(1));
    for (const h of hostIds) {
      const list = this.listOf(h);
      if (this.loading) list.push(slot);
      else list.insert(slot, this.ids);
    }
  }

  private unlink(slot: number): void {
    for (const h of this.hostsOf(slot)) {
      const list = this.byHost.get(h);
      if (!list) continue;
      list.remove(slot, this.ids);
      if (list.length === 0) this.byHost.delete(h);
    }
    this.moreHosts.delete(slot);
  }

  private allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.used === this.ids.length) {
      const size = this.ids.length * 2;
      this.ids = grown(this.ids, size);
      this.statuses = grown(this.statuses, size);
      this.names = grown(this.names, size);
      this.creators = grown(this.creators, size);
      this.ended = grown(this.ended, size);
      this.host = grown(this.host, size);
    }
    return this.used++;
  }

  /** Add the task, or bring it up to date. */
  put(row: TaskRow): void {
    let slot = this.slotOf(row.id);
    if (slot !== undefined && this.loading && !sameHosts(this.hostsOf(slot), row.hostIds)) {
      this.delete(row.id); // its lists are not in order yet: a new slot instead
      slot = undefined;
    }
    if (slot === undefined) {
      slot = this.allocate();
      this.ids[slot] = row.id;
      if (this.loading) {
        this.loading.set(row.id, slot);
        this.order.push(slot);
      } else this.order.insert(slot, this.ids);
      this.link(slot, row.hostIds);
    } else if (!sameHosts(this.hostsOf(slot), row.hostIds)) {
      this.unlink(slot);
      this.link(slot, row.hostIds);
    }
    this.statuses[slot] = STATUS_CODE[row.status];
    this.names[slot] = this.nameId(row.name);
    this.creators[slot] = row.creator === undefined ? NO_CREATOR : this.creatorId(row.creator);
    this.ended[slot] = row.endedAt ?? Number.NaN;
  }

  delete(id: number): void {
    const slot = this.slotOf(id);
    if (slot === undefined) return;
    if (this.loading) {
      this.loading.delete(id);
      this.statuses[slot] = FREE;
      this.moreHosts.delete(slot);
      this.freedWhileLoading.push(slot);
      return;
    }
    this.unlink(slot);
    this.order.remove(slot, this.ids);
    this.statuses[slot] = FREE;
    this.free.push(slot);
  }

  /** Whether the table holds the task. */
  has(id: number): boolean {
    return this.slotOf(id) !== undefined;
  }

  /** `limit` ids matching `filter` from `offset`, newest first, and how many match in all. */
  list(filter: TaskFilter, offset: number, limit: number): { ids: number[]; total: number } {
    const source = filter.hostId === undefined ? this.order : this.byHost.get(filter.hostId);
    if (!source) return { ids: [], total: 0 };
    const name = filter.name === undefined ? undefined : this.nameIds.get(filter.name);
    if (filter.name !== undefined && name === undefined) return { ids: [], total: 0 };
    const creator = filter.creator === undefined ? undefined : this.creatorIds.get(filter.creator);
    if (filter.creator !== undefined && creator === undefined) return { ids: [], total: 0 };
    const status = filter.status === undefined ? undefined : STATUS_CODE[filter.status];
    const { items } = source;
    const ids: number[] = [];
    const end = offset + limit;
    if (status === undefined && name === undefined && creator === undefined) {
      // Every one matches: the page is where it is.
      for (let i = source.length - 1 - offset; i >= 0 && ids.length < limit; i--) {
        ids.push(this.ids[items[i] as number] as number);
      }
      return { ids, total: source.length };
    }
    let total = 0;
    for (let i = source.length - 1; i >= 0; i--) {
      const slot = items[i] as number;
      if (status !== undefined && this.statuses[slot] !== status) continue;
      if (name !== undefined && this.names[slot] !== name) continue;
      if (creator !== undefined && this.creators[slot] !== creator) continue;
      if (total >= offset && total < end) ids.push(this.ids[slot] as number);
      total++;
    }
    return { ids, total };
  }

  /** The ids of the running tasks, oldest first. */
  running(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.order.length; i++) {
      const slot = this.order.items[i] as number;
      if (this.statuses[slot] === RUNNING) out.push(this.ids[slot] as number);
    }
    return out;
  }

  /** The ids of the tasks that ended before `cutoffMs`, oldest first. */
  endedBefore(cutoffMs: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.order.length; i++) {
      const slot = this.order.items[i] as number;
      if (this.statuses[slot] !== RUNNING && (this.ended[slot] as number) < cutoffMs) {
        out.push(this.ids[slot] as number);
      }
    }
    return out;
  }
}
