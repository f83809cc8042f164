// A TypeScript SDK workflow on the host's activities, through the stubs `activity-host codegen
// --lang typescript` writes (./stubs.ts, written beside it by the test): ValidateUser ->
// CreateUser -> SendNotification, and CreateUser's typed failure for another user under the
// same id.
import { activities, hostFailure, User } from './stubs';

export interface TypedUserResult {
  valid: boolean;
  stored: { user_id: string; email: string; version: number };
  delivery: string;
  conflict: string;
}

export async function typedUser(id: string): Promise<TypedUserResult> {
  const host = activities({ startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });
  const user: User = { user_id: id, email: 'ts@example.com', name: 'TypeScript' };
  const checked = await host.ValidateUser(user);
  const stored = await host.CreateUser(user);
  const sent = await host.SendNotification({
    user_id: id,
    email: user.email,
    action: 'create',
    message: `welcome, version ${stored.version}`,
  });
  let conflict = 'none';
  try {
    await host.CreateUser({ ...user, email: 'other@example.com' });
  } catch (err) {
    conflict = hostFailure(err)?.type ?? `untyped: ${err}`;
  }
  return { valid: checked.valid, stored, delivery: sent.target, conflict };
}
