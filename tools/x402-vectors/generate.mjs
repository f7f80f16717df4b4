// Signs x402 `exact` and `upto` payments for fixed requirements with the official @x402 client libraries
// (x402Client + registerExactEvmScheme + UptoEvmScheme, a viem local account) and writes each as a JSON fixture
// to crates/core/tests/vectors/x402/signed/. Run it with `make vectors` (scripts/x402-vectors.sh).
//
// The payloads are exactly what the libraries produce: a fresh random nonce and validBefore /
// deadline = now + maxTimeoutSeconds on every run, so a run rewrites every file; `generatedAt`
// records the clock the library read. Name files to write only those (node generate.mjs
// upto_permit2_v2.json); with none, every file is written.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

import { x402Client } from "@x402/core/client";
import { x402HTTPClient } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { privateKeyToAccount } from "viem/accounts";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const outDir = path.join(repo, "crates/core/tests/vectors/x402/signed");
const COMMAND = "make vectors";

// Anvil's / Hardhat's first development account: a published test key that holds nothing.
const TEST_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

// USDC on Base Sepolia, with its EIP-712 domain name and version (as in @x402/evm's defaultAssets).
const NETWORK_V2 = "eip155:84532";
const NETWORK_V1 = "base-sepolia";
const USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
// The facilitator an `upto` requirement names (extra.facilitatorAddress): Anvil's second account.
const FACILITATOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const RESOURCE = {
  url: "https://api.weather.example/v2/forecast",
  description: "Seven-day forecast",
  mimeType: "application/json",
};

function installedVersion(name) {
  const file = path.join(here, "node_modules", name, "package.json");
  return JSON.parse(readFileSync(file, "utf8")).version;
}

const libraries = {
  "@x402/core": installedVersion("@x402/core"),
  "@x402/evm": installedVersion("@x402/evm"),
  viem: installedVersion("viem"),
};

const account = privateKeyToAccount(TEST_PRIVATE_KEY);
const client = registerExactEvmScheme(new x402Client(), { signer: account });
client.register("eip155:*", new UptoEvmScheme(account));
const http = new x402HTTPClient(client);

const requirementV2 = (extra) => ({
  scheme: "exact",
  network: NETWORK_V2,
  amount: "10000",
  asset: USDC_BASE_SEPOLIA,
  payTo: PAY_TO,
  maxTimeoutSeconds: 60,
  extra: { name: "USDC", version: "2", ...extra },
});

const requirementV1 = {
  scheme: "exact",
  network: NETWORK_V1,
  maxAmountRequired: "10000",
  resource: RESOURCE.url,
  description: RESOURCE.description,
  mimeType: RESOURCE.mimeType,
  payTo: PAY_TO,
  maxTimeoutSeconds: 60,
  asset: USDC_BASE_SEPOLIA,
  extra: { name: "USDC", version: "2" },
};

const cases = [
  {
    file: "exact_eip3009_v2.json",
    description: "x402 v2 `exact` on Base Sepolia, EIP-3009 transferWithAuthorization (the default method)",
    assetTransferMethod: "eip3009",
    paymentRequired: { x402Version: 2, resource: RESOURCE, accepts: [requirementV2({})] },
  },
  {
    file: "exact_permit2_v2.json",
    description: "x402 v2 `exact` on Base Sepolia, Permit2 through x402ExactPermit2Proxy (extra.assetTransferMethod = permit2)",
    assetTransferMethod: "permit2",
    paymentRequired: {
      x402Version: 2,
      resource: RESOURCE,
      accepts: [requirementV2({ assetTransferMethod: "permit2" })],
    },
  },
  {
    file: "upto_permit2_v2.json",
    description: "x402 v2 `upto` on Base Sepolia: Permit2 through x402UptoPermit2Proxy, the witness naming the facilitator (UptoEvmScheme)",
    assetTransferMethod: "permit2",
    paymentRequired: {
      x402Version: 2,
      resource: RESOURCE,
      accepts: [
        {
          ...requirementV2({ facilitatorAddress: FACILITATOR }),
          scheme: "upto",
          amount: "50000",
        },
      ],
    },
  },
  {
    file: "exact_eip3009_v1.json",
    description: "x402 v1 `exact` on base-sepolia, EIP-3009 (ExactEvmSchemeV1, the v1 payload shape)",
    assetTransferMethod: "eip3009",
    paymentRequired: { x402Version: 1, error: "X-PAYMENT header is required", accepts: [requirementV1] },
  },
];

const only = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
for (const c of cases.filter((c) => only.length === 0 || only.includes(c.file))) {
  const generatedAt = Math.floor(Date.now() / 1000);
  const paymentPayload = await client.createPaymentPayload(c.paymentRequired);
  const [headerName, headerValue] = Object.entries(http.encodePaymentSignatureHeader(paymentPayload))[0];
  const fixture = {
    description: c.description,
    generator: {
      command: COMMAND,
      script: "tools/x402-vectors/generate.mjs",
      libraries,
      node: process.version,
    },
    generatedAt,
    signer: account.address,
    assetTransferMethod: c.assetTransferMethod,
    x402Version: c.paymentRequired.x402Version,
    paymentRequired: c.paymentRequired,
    requirement: c.paymentRequired.accepts[0],
    paymentPayload,
    header: { name: headerName, value: headerValue },
  };
  writeFileSync(path.join(outDir, c.file), JSON.stringify(fixture, null, 2) + "\n");
  console.log(`wrote ${path.relative(repo, path.join(outDir, c.file))}`);
}
