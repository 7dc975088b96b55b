/**
 * The permissions of SPEC §3 and §4, one list for HTTP users, the API's
 * operations and Slack; ADMIN holds every one.
 */
export const PERMISSIONS = ['HOST_MANAGER', 'HOST_VIEWER', 'TASK_MANAGER', 'TASK_VIEWER'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ['ADMIN', ...PERMISSIONS] as const;
