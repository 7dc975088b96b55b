/**
 * OCP's timestamp format: ISO-8601 with milliseconds and the local UTC offset
 * written as +HH:MM, e.g. 2021-09-03T14:17:06.342+08:00.
 */
export function formatOcpTime(date: Date): string {
  const offsetMin = -date.getTimezoneOffset();
  const local = new Date(date.getTime() + offsetMin * 60_000);
  const sign = offsetMin >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMin);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local.toISOString().slice(0, 23)}${sign}${hh}:${mm}`;
}
