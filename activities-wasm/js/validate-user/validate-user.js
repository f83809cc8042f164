// ValidateUser written in JavaScript: the same WIT world (`validate-user` in wit/users.wit)
// and the same answers as the Rust reference activity, built with componentize-js.
import { log } from 'wasi:logging/logging@0.1.0-draft';

export function validateUser(user) {
  const reasons = [];
  if (user.userId.length === 0) {
    reasons.push('user_id: must not be empty');
  }
  if (user.email.split('@').length !== 2) {
    reasons.push("email: must contain exactly one '@'");
  }
  if (user.name.trim().length === 0) {
    reasons.push('name: must not be empty');
  }
  log('info', 'validate-user-js', `checked ${JSON.stringify(user.userId)}: ${reasons.length} problem(s)`);
  return { valid: reasons.length === 0, reasons };
}
