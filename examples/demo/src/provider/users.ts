import type { ProviderUser } from '@authmd/provider';

/**
 * The demo identity provider's accounts. It is a demo: anyone may sign in as any of them with just the
 * email address. A real provider authenticates its users and knows which addresses they verified.
 */
export interface DemoUser {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string;
  phoneNumber?: string;
  phoneNumberVerified?: boolean;
}

export const DEMO_USERS: readonly DemoUser[] = [
  { id: 'usr_ada', email: 'ada@example.com', emailVerified: true, name: 'Ada Lovelace' },
  { id: 'usr_grace', email: 'grace@example.com', emailVerified: true, name: 'Grace Hopper', phoneNumber: '+15555550123', phoneNumberVerified: true },
  // No verified email or phone: the provider refuses to mint for her (403 missing_verified_email).
  { id: 'usr_eve', email: 'eve@example.com', emailVerified: false, name: 'Eve Unverified' },
];

export function findUserByEmail(email: string): DemoUser | undefined {
  const wanted = email.trim().toLowerCase();
  return DEMO_USERS.find((u) => u.email === wanted);
}

export function findUserById(id: string): DemoUser | undefined {
  return DEMO_USERS.find((u) => u.id === id);
}

/** The user in the published sample provider's JSON shape. */
export function userJson(user: DemoUser, authTime: number): Record<string, unknown> {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name,
    ...(user.phoneNumber ? { phone_number: user.phoneNumber, phone_number_verified: user.phoneNumberVerified === true } : {}),
    auth_time: authTime,
  };
}

/** What the provider mints from: the user, and when this session signed in. */
export function providerUser(user: DemoUser, authTime: number): ProviderUser {
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerified,
    name: user.name,
    ...(user.phoneNumber ? { phoneNumber: user.phoneNumber, phoneNumberVerified: user.phoneNumberVerified === true } : {}),
    authTime,
  };
}
