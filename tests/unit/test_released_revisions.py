"""Released migrations never change: the SQL each alembic revision applies is frozen in
sql/revisions/<revision>/, and this manifest pins it. A change to the schema is a new revision
(with its own delta and a new line in each table here), never an edit of a released one.

Revisions 0001-0009 were released as whole files; they are stored as deltas (what changed, and
a marker for each definition repeated word for word, scheduler_admin.sql_units). RELEASED pins
the files as released (git history holds them: 9308ec2 and earlier), which the deltas must give
back with their markers expanded; STORED pins the deltas themselves."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from scheduler_admin.schema import _data_dir, released_revision_sql

REVISIONS = _data_dir("sql") / "revisions"

# sha256 of every file of every released revision, as released
RELEASED = {
    "0001/postgres/00_extension.sql": "aaf5f104507aecbb077ac6fb415e7e912952899c79085ee36d12c644d7011d75",
    "0001/postgres/10_schema.sql": "a2ab12126016b58b72551e2876543ae522237c82d021e311982ce458d7ff41ff",
    "0001/postgres/20_functions.sql": "6177d6631946dcd6c9a68cf78aa4c318c1be4a8a91c81392c91c8d028d3578b9",
    "0001/postgres/30_triggers.sql": "3d14dec12ab120eb49a0e35604bb447d9cba401409e2b9048a7ac4618fead86b",
    "0001/postgres/40_admin.sql": "54612396881cb8788af60cfd2ccdd91f62801d52a6fdbf37ea654cf12beeabfc",
    "0001/postgres/50_grants.sql": "1b4279550d2b287c66b1e95d73dd8c9b46dd9c029ee98d7623a7b7c61600e276",
    "0001/postgres/60_jobs.sql": "4645c35caa62e444128b55354c75384d1ba074873e401038d3aa4d519272c99b",
    "0001/postgres/teardown.sql": "67dd94134503a400934d3b005ba2cf0df7eaca17664a714d5cd2cec3b2b3c62e",
    "0001/sqlite/10_schema.sql": "2633f21efa593b109bda2c1e0fbdf4f9eb8fff5fdaf1a9e51565b7710e110060",
    "0001/sqlite/20_views.sql": "8b6fd63e0e199c466f344fd37018991d81b4118716048b015e14c4f1d8c9e6d9",
    "0001/sqlite/30_triggers.sql": "f85a9850c936bb3df128bb9fe61c88844000fe100f992d34dca5de2a8deaa4bc",
    "0001/sqlite/60_jobs.sql": "9e3a9fb39b9e1ed8e57cbe51852ea25ba4c9d791efd2638fa656487404cb58ac",
    "0001/sqlite/teardown.sql": "7eb10cee7d097c95f0b6f084f7fb1840d876baf245bf081d172fc64d3d394b2e",
    "0002/postgres/05_owner.sql": "928cec469a4f4a740eaf1b451df8340cade1afdc71537fa1402ec6473d0e7bf3",
    "0002/postgres/10_schema.sql": "f6e8e0989a4332def33a8a59f67caecbd01e6b5baa22a2f084d1e2fdca6e6d82",
    "0002/postgres/20_functions.sql": "76b1bc9f730cd0388ce459661ae47912e53ef1bb69296b670665b8bda7d59813",
    "0002/postgres/30_triggers.sql": "69552b393d236d6be1f1a586a187184cf0708f99eff0d95ee5013e10e4964f81",
    "0002/postgres/40_admin.sql": "0e6d06be531c59d74f5c171675a8bf882838b03bc3b956890267db4963cab664",
    "0002/postgres/50_grants.sql": "f38159ab919e19bea94ce78f3404021cbbea2f278b087536cab0932eba130b42",
    "0002/postgres/60_jobs.sql": "c3897682711e88bb2841e4471dec65b988486ea294b7fad82772a00e4b192ad6",
    "0002/postgres/90_reset_role.sql": "66c83052fcb07d385733fa3adcb7500ebea728deaef64edfe688d4a799846574",
    "0002/postgres/downgrade.sql": "b422725d0b62bb56785f4895cebd58d8d48b8e4c21c28e20aa6c9b9c77a64941",
    "0003/postgres/10_schema.sql": "e8a8587f5aae60eff759a96d530e5ad9840ff127661071d8612f06292284df19",
    "0003/postgres/20_functions.sql": "d1aba500de81bdf8393f3d59a12657c0ddcac7cc5ae85a9dc7e3ecdded778399",
    "0003/postgres/30_triggers.sql": "5b8eb535d82bfda9930125e76567844c76bedbd7c7d88fabf8aec9ff59ab715f",
    "0003/postgres/40_admin.sql": "4f385b091444748cec7206e8b7cc1218ccba8ddc39616a89f8e11697bdc11e54",
    "0003/postgres/50_grants.sql": "c9434847f7b2599001af1653034e421cb40fbf95dd14bc82c9aae695a23016e9",
    "0003/postgres/60_jobs.sql": "d58d3c15a7f1bda5f88abf308b27f6b64db346247f714e85c99817c32d5a813b",
    "0003/postgres/downgrade.sql": "144afe35a05f6512d1a7b5798dbe1121329f08a1831559c4cae0a28976e0f0f3",
    "0003/sqlite/10_schema.sql": "4f0d108ab4283919ddbb8448fa8a550d129403e1a38ff290e10ee01bf9f8b4bf",
    "0003/sqlite/20_views.sql": "1718d730caa2b056f546c897ab98df615079b7ed0665d6cebddfe341376caacd",
    "0003/sqlite/30_triggers.sql": "bdb06e4dfb171c62ad8843eef4ea7d91e16eaf299c27891df8a6e6f47a08ad72",
    "0003/sqlite/downgrade.sql": "a459ec923a719b25b46df5663b86d90fd6883d9f857dd6c732a64ec2687d0bb3",
    "0004/postgres/10_schema.sql": "70d74d39440dd4899885578143c47030e32a960523ec60754d7a59d42a37e19c",
    "0004/postgres/20_functions.sql": "15e8be85549b97bfbbf7e11d02296276e70be5d0e577a8f9a06516221ec69c19",
    "0004/postgres/30_triggers.sql": "1eade64455a82787832813e68e33e6d619c2b09c73809a9080a44f7534b86e42",
    "0004/postgres/40_admin.sql": "7999195e3187dbdf09f8d4e5cc375caad2c5ecb1b8284d59ac619445baee4e02",
    "0004/postgres/50_grants.sql": "62c0425cb96de8dac4e5f781599192fd66c7a885f11a5145255524e8b24c132a",
    "0004/postgres/downgrade.sql": "1ab11930d1ed776dd3aac7c72217ea3e62942455d95bf25cdfc8c57b48d08557",
    "0004/sqlite/10_schema.sql": "fde6dcf4ad62343e1201582a0305371916824af56482744beae112104d6d0651",
    "0004/sqlite/20_views.sql": "9d7628b3c4c2bfe3227b0cd16144945941c63d2749f103fd847faee23c447911",
    "0004/sqlite/30_triggers.sql": "2a53ea6331167fa512dab374eae6c1870f6a1159820dd8c359789096056c571b",
    "0004/sqlite/downgrade.sql": "488a6efd5702014e101c866d7010bf3b0631e9f843de2443e78d1e31de870658",
    "0005/postgres/20_functions.sql": "4794ac04ea2abc7c87c5b053e9a67efacc1322e9be5996fd62999008cd403a4e",
    "0005/postgres/40_admin.sql": "a97c1e1e1a211be1b38aed32929135dcd09b886a6da58ce34f17220b6c95580d",
    "0005/postgres/45_transitions.sql": "a6e40cb302e4a4568bcb8d2bb6520ce56032fd21d86cdd2336a62e5f45f38737",
    "0005/postgres/50_grants.sql": "c9e1de02b378d3f2dc69b2d865f13c7b9e95ffe8388a7a74fb7d1e18b73ceb84",
    "0005/postgres/downgrade.sql": "899e1ed87c8e053bf95be3e20f19cb93dcafa53236548202e2c9252613cf887f",
    "0005/postgres/downgrade_functions.sql": "63f96ba49e685ac5e4e4f0d36939c684476c1c8512f632509358fb3fdf0b1ca1",
    "0005/sqlite/10_schema.sql": "7b4ddb4ae2940905a262073f3ead6116f90e7f40ca51f75489f3ef0007b68f2b",
    "0005/sqlite/downgrade.sql": "dcf8c4a04c981f6635c7dd41870df5f463ecba8357c76806cf244079facd5420",
    "0005/sqlite/generated_triggers.sql": "465e238d36f2362e72fc61fcf37ef9d0484b41e79ac09f8a655c0fc28aec2b55",
    "0006/postgres/20_functions.sql": "5ae3284a581857e965f3e9260c761718128044398299eee2f512b504502ad183",
    "0006/postgres/40_admin.sql": "47eae849b951b8b79f163e8a70cd9fb66788d145ff07bf95c66fdda3172ab18f",
    "0006/postgres/45_transitions.sql": "0ed8cc3831e4a64302076d1f6124da1037574ea0a8ad1f73178d08e05106db07",
    "0006/postgres/50_grants.sql": "3a9dffdb95e3804778b79cb5e3a9e2feca1f2e91209887ce93812fcf7b329fd8",
    "0006/postgres/downgrade.sql": "dc9b8973584a39c11cf320275735353ccb6b69213b69c2455fc1e93e35a838ca",
    "0006/postgres/downgrade_functions.sql": "caca62add945ff004e70b1ce7e7f9b2b08203092d665e2fd42f5cb6e355ab420",
    "0006/sqlite/30_triggers.sql": "84141b32bd8ad7d880b0199cf0348326573e7c9f3dfb618ad8963cadb42afb52",
    "0006/sqlite/downgrade.sql": "cc8022c1998df03b1467a469c4802089391a0c2ddce25fd41a8802c91d008c79",
    "0006/sqlite/generated_triggers.sql": "9bf3e532c9299366fb3e0e2cc3b8f6e00382da7b0c0d6f532e394a6c0e456ed4",
    "0006/sqlite/upgrade.sql": "3434a8e6e1a7fb7b2baaf7f0be727e3ba1543e15bb67417d1f34d5fef4c90f66",
    "0007/postgres/10_schema.sql": "8f8a03839f45975e7d1f62ee7718f9138f11560b0357806c2731b177e1f7ece6",
    "0007/postgres/20_functions.sql": "3a754a016569a0071ab1520c6d0470a474df802bfb30e883c5a1475a0cb93a12",
    "0007/postgres/40_admin.sql": "55ff7891c8a4810142ba3d176bd18f8b3ecb1c51440cee676a72d0570fcf4ac9",
    "0007/postgres/45_transitions.sql": "b93268747c22cefd914d8af66b87561c816418c6b5353b77ae2df0b0295f43c1",
    "0007/postgres/50_grants.sql": "b0d05e46f0d3ee29cba73c5800cc324d2972ec5bb9dbee668600638b3f0ab4fd",
    "0007/postgres/downgrade.sql": "131db0452c29c02067429b699ca617e09e62b161e092ef28d8d77f70f40b483f",
    "0007/postgres/downgrade_functions.sql": "93c1aa0468084b91644fb6628b2d274c77849ef4b51c8fdf644fc091ec59e61a",
    "0007/sqlite/20_views.sql": "c887da2a1a3e4bf027ce01cc9cd39a26040544c34a44707bd3ded9d03749d2b5",
    "0007/sqlite/30_triggers.sql": "581cd9bfacdae5387b96ac4ed439ab5dda8875d1458e959bd1e3af7697c0d584",
    "0007/sqlite/downgrade.sql": "5431cf2e21905e1d52b9546a4a720365582c31744893f02a2484b7e6dd30b9f7",
    "0007/sqlite/generated_triggers.sql": "529a276a890b72723ab50cefbd5c7e00597ec1f547555ee4378ba48c23d1f974",
    "0007/sqlite/upgrade.sql": "25939346bd74f2893a57df2e66534121d257c3dcdaff971975760d78d1812d8f",
    "0008/postgres/40_admin.sql": "74d9f6aaf2d250eab45a44f327c1480cf3f8ef35529e58b1cec1bdef35237f07",
    "0008/postgres/45_transitions.sql": "fa31f6e576a54760c3504d70c0afdcfadea786249e75346f213d4e5722b11f86",
    "0009/postgres/10_schema.sql": "8b4faf8550e9711b06afd37a057160b461fb28a2cf868fab2ea2e2ee6d18b172",
    "0009/postgres/25_safety.sql": "fe98ef8c3dc9d61c6e7843d39cdf9c2d0b23bba71227a0d6094aea2d69e3e4fb",
    "0009/postgres/after.sql": "81fda1f8febc9b26854309425def39ada37bac547c5cc919942cc5edd6985e6c",
    "0009/postgres/downgrade.sql": "c679a399058783a517b46b95bf84875b01a3048cd29cf25fd8970bbd75c9fb87",
    "0009/postgres/functions.sql": "299cdc3ccdfd4d7b71c2bfba591bcc74c0fefa1b38c6e6ea41a4b0fdba0a51f2",
    "0009/postgres/grants.sql": "9628f9a4785bada8c17f68d1b4a80e6ec5a3aa8017ded756a6c244aa59655010",
    "0009/sqlite/downgrade.sql": "8758c3123b1f463ead4ce6177584909831909b398853d162e6f0870fddc1a569",
    "0009/sqlite/upgrade.sql": "6f5ba2389514e3832a31592ef3214b4f9782808171f126dcff4c43d909fecaa5",
    "0010/postgres/downgrade.sql": "ed52dbc986727311f713c6e225eb230a389bc57086ae9f152b59a4688159a2db",
    "0010/postgres/upgrade.sql": "3bd60bbe531fe42fb89e3f3d7dd0000a87d54274c986a488dd7ed73f9da75ac2",
    "0011/postgres/downgrade.sql": "19c5f21d9a6149df968d621974742f7579b88b9e64b87034661c1e1966c69be0",
    "0011/postgres/upgrade.sql": "a9465ee8227df5357e901c70b52102e48895555dd8d7850ef48c38c98317dacf",
    "0011/sqlite/30_triggers.sql": "8cd58b10e72b62608723cafe311a339108d1d9bcfd626955a928f122cc5e7978",
    "0011/sqlite/downgrade.sql": "d1c7d3de90ab9653462ff0031b4ff64ff1965f9889465c626c005070b7484e91",
    "0011/sqlite/generated_triggers.sql": "0ecb3a5708a321453467b8582c4b00f9a10afaa8db407c362e0a7f239194d91a",
    "0011/sqlite/upgrade.sql": "f02c0cb487f78c58690ecb7ba82ec672f79517d6b3c4e1f5a08a3290df90b763",
    "0012/postgres/downgrade.sql": "74766a27372a88485f11519f2f6d176011009b40190fe21b7a0782fff121cd2b",
    "0012/postgres/upgrade.sql": "ff11176281220e02b2fc3eb493fb9b0c564d344c5b770f1da8b9d64327bd5473",
    "0012/sqlite/downgrade.sql": "671819e514df241b254fc020a20568294feb51b16fe97ec83228dfbebc70b024",
    "0012/sqlite/upgrade.sql": "f6d318d005c590e45ff447f841f4f2723113d2e9061a5fc4ce7e1bff3684c53d",
    "0013/sqlite/30_triggers.sql": "43f4798d3736e023d8339bf16bf697e10f07b5c903446b168db94b07a86e2925",
}

# sha256 of every file of every revision as stored (the deltas)
STORED = {
    "0001/postgres/00_extension.sql": "aaf5f104507aecbb077ac6fb415e7e912952899c79085ee36d12c644d7011d75",
    "0001/postgres/10_schema.sql": "a2ab12126016b58b72551e2876543ae522237c82d021e311982ce458d7ff41ff",
    "0001/postgres/20_functions.sql": "6177d6631946dcd6c9a68cf78aa4c318c1be4a8a91c81392c91c8d028d3578b9",
    "0001/postgres/30_triggers.sql": "3d14dec12ab120eb49a0e35604bb447d9cba401409e2b9048a7ac4618fead86b",
    "0001/postgres/40_admin.sql": "54612396881cb8788af60cfd2ccdd91f62801d52a6fdbf37ea654cf12beeabfc",
    "0001/postgres/50_grants.sql": "1b4279550d2b287c66b1e95d73dd8c9b46dd9c029ee98d7623a7b7c61600e276",
    "0001/postgres/60_jobs.sql": "4645c35caa62e444128b55354c75384d1ba074873e401038d3aa4d519272c99b",
    "0001/postgres/teardown.sql": "67dd94134503a400934d3b005ba2cf0df7eaca17664a714d5cd2cec3b2b3c62e",
    "0001/sqlite/10_schema.sql": "2633f21efa593b109bda2c1e0fbdf4f9eb8fff5fdaf1a9e51565b7710e110060",
    "0001/sqlite/20_views.sql": "8b6fd63e0e199c466f344fd37018991d81b4118716048b015e14c4f1d8c9e6d9",
    "0001/sqlite/30_triggers.sql": "f85a9850c936bb3df128bb9fe61c88844000fe100f992d34dca5de2a8deaa4bc",
    "0001/sqlite/60_jobs.sql": "9e3a9fb39b9e1ed8e57cbe51852ea25ba4c9d791efd2638fa656487404cb58ac",
    "0001/sqlite/teardown.sql": "7eb10cee7d097c95f0b6f084f7fb1840d876baf245bf081d172fc64d3d394b2e",
    "0002/postgres/05_owner.sql": "928cec469a4f4a740eaf1b451df8340cade1afdc71537fa1402ec6473d0e7bf3",
    "0002/postgres/10_schema.sql": "f6e8e0989a4332def33a8a59f67caecbd01e6b5baa22a2f084d1e2fdca6e6d82",
    "0002/postgres/20_functions.sql": "76b1bc9f730cd0388ce459661ae47912e53ef1bb69296b670665b8bda7d59813",
    "0002/postgres/30_triggers.sql": "c7974718ef7eb17830583bf87d4a5ac443a8996a7760ec9c31d04844f68e6a9a",
    "0002/postgres/40_admin.sql": "0e6d06be531c59d74f5c171675a8bf882838b03bc3b956890267db4963cab664",
    "0002/postgres/50_grants.sql": "f38159ab919e19bea94ce78f3404021cbbea2f278b087536cab0932eba130b42",
    "0002/postgres/60_jobs.sql": "c3897682711e88bb2841e4471dec65b988486ea294b7fad82772a00e4b192ad6",
    "0002/postgres/90_reset_role.sql": "66c83052fcb07d385733fa3adcb7500ebea728deaef64edfe688d4a799846574",
    "0002/postgres/downgrade.sql": "b422725d0b62bb56785f4895cebd58d8d48b8e4c21c28e20aa6c9b9c77a64941",
    "0003/postgres/10_schema.sql": "e8a8587f5aae60eff759a96d530e5ad9840ff127661071d8612f06292284df19",
    "0003/postgres/20_functions.sql": "1122a28862a1950ccaf8de891992188ff23d088c9a8307abea50c6a98b8db676",
    "0003/postgres/30_triggers.sql": "1c2be022e3d1c952b6adb6bd55609f4d7a9444cd8e5982dd2bf3b8c38f28b449",
    "0003/postgres/40_admin.sql": "54d4a465750bf4fb555f2f51aa04a4798bb169a52c4d268cc49e624e3e487143",
    "0003/postgres/50_grants.sql": "c9434847f7b2599001af1653034e421cb40fbf95dd14bc82c9aae695a23016e9",
    "0003/postgres/60_jobs.sql": "d58d3c15a7f1bda5f88abf308b27f6b64db346247f714e85c99817c32d5a813b",
    "0003/postgres/downgrade.sql": "144afe35a05f6512d1a7b5798dbe1121329f08a1831559c4cae0a28976e0f0f3",
    "0003/sqlite/10_schema.sql": "4f0d108ab4283919ddbb8448fa8a550d129403e1a38ff290e10ee01bf9f8b4bf",
    "0003/sqlite/20_views.sql": "83819ef66b2664c035ab468519edefbd0a2be024d0eedd6ece6bf3446f1a3747",
    "0003/sqlite/30_triggers.sql": "f4da96befe86e8cdf8783fea26831cd40782ceef1617735a3da5f78ef6d92066",
    "0003/sqlite/downgrade.sql": "a459ec923a719b25b46df5663b86d90fd6883d9f857dd6c732a64ec2687d0bb3",
    "0004/postgres/10_schema.sql": "70d74d39440dd4899885578143c47030e32a960523ec60754d7a59d42a37e19c",
    "0004/postgres/20_functions.sql": "d109e50666de48939ea8924c306b27ef586007b0749c5b5fca04c79071587bef",
    "0004/postgres/30_triggers.sql": "cc8aefc1804ff7c820a8233053033e6ae165e8f3bd21d7b9193b1b9e4bf734d4",
    "0004/postgres/40_admin.sql": "82468966693918eeed343e8b58c96102f952c7c0f83c96dbb48fbc57a5d1f1c0",
    "0004/postgres/50_grants.sql": "62c0425cb96de8dac4e5f781599192fd66c7a885f11a5145255524e8b24c132a",
    "0004/postgres/downgrade.sql": "1ab11930d1ed776dd3aac7c72217ea3e62942455d95bf25cdfc8c57b48d08557",
    "0004/sqlite/10_schema.sql": "fde6dcf4ad62343e1201582a0305371916824af56482744beae112104d6d0651",
    "0004/sqlite/20_views.sql": "65d6cd93e63af14e916cb3203ca3dd8a6a579a8ae40812905824f103b981a098",
    "0004/sqlite/30_triggers.sql": "7f52355b8367a221927de463f40412e63aebe58d0b0adb08fb6f67d7aabd16ce",
    "0004/sqlite/downgrade.sql": "488a6efd5702014e101c866d7010bf3b0631e9f843de2443e78d1e31de870658",
    "0005/postgres/20_functions.sql": "1ba5cd19e83ef7cca38fea14c2ee11fc8785b68ab8dcda867938cdf5d30f8e64",
    "0005/postgres/40_admin.sql": "a2dd9bac7f5e006295101e019c6afa52dba28e833dab75580da6a139b755127b",
    "0005/postgres/45_transitions.sql": "a6e40cb302e4a4568bcb8d2bb6520ce56032fd21d86cdd2336a62e5f45f38737",
    "0005/postgres/50_grants.sql": "c9e1de02b378d3f2dc69b2d865f13c7b9e95ffe8388a7a74fb7d1e18b73ceb84",
    "0005/postgres/downgrade.sql": "899e1ed87c8e053bf95be3e20f19cb93dcafa53236548202e2c9252613cf887f",
    "0005/postgres/downgrade_functions.sql": "63f96ba49e685ac5e4e4f0d36939c684476c1c8512f632509358fb3fdf0b1ca1",
    "0005/sqlite/10_schema.sql": "7b4ddb4ae2940905a262073f3ead6116f90e7f40ca51f75489f3ef0007b68f2b",
    "0005/sqlite/downgrade.sql": "dcf8c4a04c981f6635c7dd41870df5f463ecba8357c76806cf244079facd5420",
    "0005/sqlite/generated_triggers.sql": "465e238d36f2362e72fc61fcf37ef9d0484b41e79ac09f8a655c0fc28aec2b55",
    "0006/postgres/20_functions.sql": "4e048efadb61ce9b5a6d4c2ab5a65f4456682e268ae2595d9e222625643bad0b",
    "0006/postgres/40_admin.sql": "722ec4f16ae8bb3cc1fa778a838daa75d2bce2f891f4f879e62199715e2caba9",
    "0006/postgres/45_transitions.sql": "cd6ef0294028582c90ca90e039a4c8e66212a27ede6e7e4c5f23507506b95e57",
    "0006/postgres/50_grants.sql": "3a9dffdb95e3804778b79cb5e3a9e2feca1f2e91209887ce93812fcf7b329fd8",
    "0006/postgres/downgrade.sql": "dc9b8973584a39c11cf320275735353ccb6b69213b69c2455fc1e93e35a838ca",
    "0006/postgres/downgrade_functions.sql": "caca62add945ff004e70b1ce7e7f9b2b08203092d665e2fd42f5cb6e355ab420",
    "0006/sqlite/30_triggers.sql": "fc3afe62dc7cb76f80d21c8346e950b18599cb82244cdf76c25e010ef46da416",
    "0006/sqlite/downgrade.sql": "cc8022c1998df03b1467a469c4802089391a0c2ddce25fd41a8802c91d008c79",
    "0006/sqlite/generated_triggers.sql": "9bf3e532c9299366fb3e0e2cc3b8f6e00382da7b0c0d6f532e394a6c0e456ed4",
    "0006/sqlite/upgrade.sql": "3434a8e6e1a7fb7b2baaf7f0be727e3ba1543e15bb67417d1f34d5fef4c90f66",
    "0007/postgres/10_schema.sql": "8f8a03839f45975e7d1f62ee7718f9138f11560b0357806c2731b177e1f7ece6",
    "0007/postgres/20_functions.sql": "35494d45d1c07e4ef1f7418f24239f90492853db38c8ff1382b20c13420ee94a",
    "0007/postgres/40_admin.sql": "d6ea495d889ee97c0583b0906db04d39f900d13a28ce354d35bc5be2a136a2c0",
    "0007/postgres/45_transitions.sql": "819b34405a9ab73f91f8b0f0bffecc11632c6f0b4accd12fde3a9e208c0e03bc",
    "0007/postgres/50_grants.sql": "b0d05e46f0d3ee29cba73c5800cc324d2972ec5bb9dbee668600638b3f0ab4fd",
    "0007/postgres/downgrade.sql": "131db0452c29c02067429b699ca617e09e62b161e092ef28d8d77f70f40b483f",
    "0007/postgres/downgrade_functions.sql": "93c1aa0468084b91644fb6628b2d274c77849ef4b51c8fdf644fc091ec59e61a",
    "0007/sqlite/20_views.sql": "a7a6d7e2b00135e515180c87bb3f2e18e8177ce023fca1ea2f0f6bbf9efc3351",
    "0007/sqlite/30_triggers.sql": "ea1b0b5ed36dd04af15c8ab6c3be7b141d2a4bdb24401d72c1f38e9aa715fb33",
    "0007/sqlite/downgrade.sql": "5431cf2e21905e1d52b9546a4a720365582c31744893f02a2484b7e6dd30b9f7",
    "0007/sqlite/generated_triggers.sql": "529a276a890b72723ab50cefbd5c7e00597ec1f547555ee4378ba48c23d1f974",
    "0007/sqlite/upgrade.sql": "25939346bd74f2893a57df2e66534121d257c3dcdaff971975760d78d1812d8f",
    "0008/postgres/40_admin.sql": "786428c4146f098d168590eb0c118a644c73910dd2f6faa63bf61f69bbb0848e",
    "0008/postgres/45_transitions.sql": "30655a2b476c41f1493b3cbb1806dbd7804031763eab1cd50736b8ac992d7cb6",
    "0009/postgres/10_schema.sql": "8b4faf8550e9711b06afd37a057160b461fb28a2cf868fab2ea2e2ee6d18b172",
    "0009/postgres/25_safety.sql": "fe98ef8c3dc9d61c6e7843d39cdf9c2d0b23bba71227a0d6094aea2d69e3e4fb",
    "0009/postgres/after.sql": "81fda1f8febc9b26854309425def39ada37bac547c5cc919942cc5edd6985e6c",
    "0009/postgres/downgrade.sql": "c679a399058783a517b46b95bf84875b01a3048cd29cf25fd8970bbd75c9fb87",
    "0009/postgres/functions.sql": "299cdc3ccdfd4d7b71c2bfba591bcc74c0fefa1b38c6e6ea41a4b0fdba0a51f2",
    "0009/postgres/grants.sql": "9628f9a4785bada8c17f68d1b4a80e6ec5a3aa8017ded756a6c244aa59655010",
    "0009/sqlite/downgrade.sql": "8758c3123b1f463ead4ce6177584909831909b398853d162e6f0870fddc1a569",
    "0009/sqlite/upgrade.sql": "6f5ba2389514e3832a31592ef3214b4f9782808171f126dcff4c43d909fecaa5",
    "0010/postgres/downgrade.sql": "6af39a25e48dcb265c4386917232c700c11f95f7514635240985ec2beae3308f",
    "0010/postgres/upgrade.sql": "3bd60bbe531fe42fb89e3f3d7dd0000a87d54274c986a488dd7ed73f9da75ac2",
    "0011/postgres/downgrade.sql": "58bf4868027654eebb6cefb41041fae7fa4545e481e204a471c76841f2be7a8d",
    "0011/postgres/upgrade.sql": "a9465ee8227df5357e901c70b52102e48895555dd8d7850ef48c38c98317dacf",
    "0011/sqlite/30_triggers.sql": "8cd58b10e72b62608723cafe311a339108d1d9bcfd626955a928f122cc5e7978",
    "0011/sqlite/downgrade.sql": "d1c7d3de90ab9653462ff0031b4ff64ff1965f9889465c626c005070b7484e91",
    "0011/sqlite/generated_triggers.sql": "0ecb3a5708a321453467b8582c4b00f9a10afaa8db407c362e0a7f239194d91a",
    "0011/sqlite/upgrade.sql": "f02c0cb487f78c58690ecb7ba82ec672f79517d6b3c4e1f5a08a3290df90b763",
    "0012/postgres/downgrade.sql": "74766a27372a88485f11519f2f6d176011009b40190fe21b7a0782fff121cd2b",
    "0012/postgres/upgrade.sql": "ff11176281220e02b2fc3eb493fb9b0c564d344c5b770f1da8b9d64327bd5473",
    "0012/sqlite/downgrade.sql": "671819e514df241b254fc020a20568294feb51b16fe97ec83228dfbebc70b024",
    "0012/sqlite/upgrade.sql": "f6d318d005c590e45ff447f841f4f2723113d2e9061a5fc4ce7e1bff3684c53d",
    "0013/sqlite/30_triggers.sql": "43f4798d3736e023d8339bf16bf697e10f07b5c903446b168db94b07a86e2925",
}


def files() -> dict[str, str]:
    """Every file of every revision as stored: a revision is released when it lands, so a new
    one is pinned in the same change that adds it."""
    return {
        str(p.relative_to(REVISIONS)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(REVISIONS.rglob("*.sql"))
    }


def test_every_stored_file_is_unchanged() -> None:
    assert files() == STORED


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_each_delta_gives_back_the_file_as_released(name: str) -> None:
    """Expanding the markers of a stored delta gives, byte for byte, the file the revision
    released: leaving out a definition the database already holds word for word is the whole
    difference between the two."""
    revision, backend, file_name = name.split("/")
    text = released_revision_sql(revision, backend, file_name)  # type: ignore[arg-type]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == RELEASED[name]


def test_every_stored_file_was_released() -> None:
    assert sorted(STORED) == sorted(RELEASED)


@pytest.mark.parametrize("revision", sorted({name.split("/")[0] for name in RELEASED}))
def test_each_revision_has_a_migration_script(revision: str) -> None:
    versions = Path(__file__).resolve().parents[2] / "migrations" / "versions"
    assert list(versions.glob(f"{revision}_*.py")), revision
