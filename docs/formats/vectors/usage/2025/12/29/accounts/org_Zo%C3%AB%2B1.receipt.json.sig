{"algorithm":"Ed25519","keyId":"1e7b475a3d7a21b86a057e7687431a8a","signature":"yH7AOsVy+OlNnn/Dvl2qxoE7W1xpYnbFv6C1DsQ+rVqQJH2YctOcvSyJC7AQN14lSMXE39RbpYEiNwIm7lejCA=="}
