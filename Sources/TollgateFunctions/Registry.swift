import AccountAPI
import AuthValidator
import Cleanup
import ClerkWebhook
import Health
import QuotaReset
import StripeWebhook
import TollgateModel
import TollgateRuntime
import UsageExport
import UsageRecorder
import UsageReport

/// Every function Tollgate has, once: the emulator runs them, `tollgate deploy render`
/// renders Terraform's variables and Cloud Build's pipeline from their declarations, and
/// the Dockerfile builds each folder under `functions/`. A new function is one import and
/// one entry here (and one row in Package.swift).
public enum TollgateFunctions {
    public static let all: [any BuildableFunction.Type] = [
        StripeWebhookFunction.self, ClerkWebhookFunction.self, AuthValidatorFunction.self, AccountAPIFunction.self,
        UsageRecorderFunction.self, QuotaResetFunction.self, UsageExportFunction.self, UsageReportFunction.self,
        CleanupFunction.self, HealthFunction.self,
    ]

    public static var declarations: [FunctionDeclaration] { all.map { $0.declaration } }
}
