/* saga-svc's command signatures (cqrs/saga_sign.h): a MAC over the tenant and
 * the value under the key, checked in constant time; the command types a
 * saga may send. */
#include "cqrs/saga_sign.h"
#include "unit.h"

#define KEY "0123456789abcdef0123456789abcdef"
#define VALUE "{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"c-1\"}"

TestSuite(saga_sign);

Test(saga_sign, a_signature_verifies_only_for_its_key_tenant_and_value) {
  char sig[CQRS_SAGA_SIGNATURE_LEN];
  cr_assert(cqrs_saga_sign(KEY, "acme", VALUE, strlen(VALUE), sig));
  cr_assert_eq(strlen(sig), 64);
  cr_assert_eq(strspn(sig, "0123456789abcdef"), 64, "lower-case hex");
  cr_assert(cqrs_saga_verify(KEY, "acme", VALUE, strlen(VALUE), sig));
  cr_assert_not(cqrs_saga_verify(KEY, "globex", VALUE, strlen(VALUE), sig), "another tenant");
  cr_assert_not(cqrs_saga_verify(KEY, "acme", VALUE, strlen(VALUE) - 1, sig), "another value");
  cr_assert_not(cqrs_saga_verify("another-key-another-key-another-key", "acme", VALUE, strlen(VALUE), sig));
  cr_assert_not(cqrs_saga_verify(KEY, "acme", VALUE, strlen(VALUE), NULL), "no signature");
  cr_assert_not(cqrs_saga_verify(NULL, "acme", VALUE, strlen(VALUE), sig), "no key: nothing verifies");
  sig[10] = sig[10] == 'a' ? 'b' : 'a';
  cr_assert_not(cqrs_saga_verify(KEY, "acme", VALUE, strlen(VALUE), sig), "one character off");
  cr_assert_not(cqrs_saga_verify(KEY, "acme", VALUE, strlen(VALUE), "abc"), "too short");
}

Test(saga_sign, tenant_and_value_do_not_run_together) {
  char a[CQRS_SAGA_SIGNATURE_LEN], b[CQRS_SAGA_SIGNATURE_LEN];
  cr_assert(cqrs_saga_sign(KEY, "ab", "c", 1, a));
  cr_assert(cqrs_saga_sign(KEY, "a", "bc", 2, b));
  cr_assert_str_neq(a, b);
}

Test(saga_sign, only_the_commands_sagas_send) {
  cr_assert(cqrs_saga_command_allowed("RecordUserOrder"));
  cr_assert(cqrs_saga_command_allowed("RecordCustomerOrder"));
  cr_assert(cqrs_saga_command_allowed("UpdateOrderStatus"));
  cr_assert_not(cqrs_saga_command_allowed("CreateUser"));
  cr_assert_not(cqrs_saga_command_allowed("SuspendCustomer"));
  cr_assert_not(cqrs_saga_command_allowed(NULL));
}
