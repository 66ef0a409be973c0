"""A small built-in demo corpus for `lingshu quickstart`: annotated Chinese medical sentences.

Everything in this module (the term lists, the sentence templates and the prediction
sentences) is original content written for lingshu by its authors. Nothing is copied from
CMeEE, CBLUE or any other data set or web text; the corpus only follows the CMeEE annotation
scheme, so that the quickstart exercises the same code paths as the real benchmark:

    dis 疾病    sym 临床表现    pro 医疗程序    equ 医疗设备    dru 药物
    ite 医学检验项目    bod 身体    dep 科室    mic 微生物类

The corpus is *compositional*: sentences are built by filling hand-written templates with
hand-written terms, and entity offsets are recorded while each string is assembled (never
recovered with `str.find`), so every annotation is exact by construction. To keep the
combinations medically plausible, terms are grouped by clinical domain (respiratory,
digestive, cardiovascular, ...), each disease lists the microbes that cause it and the drugs
that treat it, and each device is paired with the procedure it is used in; a sentence draws
all its terms from one domain and its first disease ("focus").

Some template slots produce nested mentions, as CMeEE has them: `{bsym}` is a body part plus
a symptom suffix ("右上腹" + "隐痛": sym over the whole, bod inside), `{bdis}` a body part plus
a disease suffix ("膀胱" + "结石"), `{bpro}` an imaging examination ("胸部" + "CT检查") and
`{mite}` a microbe plus a test ("幽门螺杆菌" + "抗体检测": ite over the whole, mic inside).

About 20% of every term list is held out (`held_out_terms()`): the training split never uses
those terms and the dev split favours them, so dev F1 measures a little generalisation beyond
memorised terms while train and dev still share the templates.

Public API:
    demo_documents(n=400, seed=0, split="all") -> list[Document]
    write_demo(directory, n=400, dev_fraction=0.2, seed=0) -> {"train", "dev", "predict": Path}
    term_lists(), held_out_terms(), ENTITY_TYPES, TYPE_NAMES, DOMAINS, TEMPLATES,
    PREDICT_SENTENCES
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from lingshu.schema import Document, Entity

ENTITY_TYPES: tuple[str, ...] = ("dis", "sym", "pro", "equ", "dru", "ite", "bod", "dep", "mic")

TYPE_NAMES: dict[str, str] = {
    "dis": "疾病",
    "sym": "临床表现",
    "pro": "医疗程序",
    "equ": "医疗设备",
    "dru": "药物",
    "ite": "医学检验项目",
    "bod": "身体",
    "dep": "科室",
    "mic": "微生物类",
}

HOLDOUT_FRACTION = 0.2
_HOLDOUT_SEED = 20240611  # fixed: which terms are held out does not depend on the seed

# ---------------------------------------------------------------------------------------------
# Terms by clinical domain.
#   diseases: {disease: ([microbes causing it], [drugs treating it])}
#   uses:     [(device, procedure it is used in)]
#   sym/ite/dep, and extra mic/dru/pro/equ/bod: plain lists
#   bsym/bdis/bpro: ([body parts], [suffixes]) for nested sym/dis/pro mentions
#   scan:     {bdis body part: [bpro body parts that image it]}, so findings match the scan
# ---------------------------------------------------------------------------------------------

DOMAINS: dict[str, dict[str, Any]] = {
    "respiratory": {
        "diseases": {
            "社区获得性肺炎": (["肺炎链球菌", "肺炎克雷伯菌"], ["头孢曲松", "左氧氟沙星"]),
            "支原体肺炎": (["肺炎支原体"], ["阿奇霉素", "左氧氟沙星"]),
            "肺结核": (["结核分枝杆菌"], ["异烟肼", "利福平"]),
            "支气管扩张症": (["铜绿假单胞菌"], ["左氧氟沙星", "阿奇霉素"]),
            "慢性阻塞性肺疾病急性加重": (["流感嗜血杆菌"], ["左氧氟沙星", "布地奈德"]),
            "支气管哮喘": ([], ["布地奈德"]),
        },
        "sym": ["咳嗽", "咳嗽伴咳痰", "气促", "呼吸困难", "喘息", "咯血"],
        "ite": ["血常规", "C反应蛋白", "降钙素原", "血气分析", "痰培养"],
        "dep": ["呼吸内科", "呼吸与危重症医学科", "全科医学科", "急诊内科"],
        "uses": [("纤维支气管镜", "支气管镜检查"), ("呼吸机", "机械通气"),
                 ("雾化器", "雾化吸入治疗"), ("无创呼吸机", "无创通气")],
        "pro": ["肺功能检查", "胸腔穿刺引流术"],
        "bsym": (["胸部", "咽部"], ["疼痛", "不适"]),
        "bdis": (["左下肺", "右上肺", "右中肺"], ["恶性肿瘤", "感染"]),
        "bpro": (["胸部", "双肺"], ["CT检查", "增强CT检查", "X线检查", "高分辨率CT检查"]),
        "scan": {"左下肺": ["胸部", "双肺"], "右上肺": ["胸部", "双肺"], "右中肺": ["胸部", "双肺"]},
    },
    "digestive": {
        "diseases": {
            "慢性胃炎": (["幽门螺杆菌"], ["奥美拉唑", "枸橼酸铋钾"]),
            "消化性溃疡": (["幽门螺杆菌"], ["奥美拉唑", "枸橼酸铋钾", "克拉霉素"]),
            "慢性乙型肝炎": (["乙型肝炎病毒"], ["恩替卡韦"]),
            "细菌性痢疾": (["志贺菌"], ["左氧氟沙星", "蒙脱石散"]),
            "急性胃肠炎": (["诺如病毒", "沙门菌"], ["蒙脱石散", "口服补液盐"]),
            "急性胰腺炎": ([], ["奥美拉唑"]),
        },
        "sym": ["腹胀", "腹泻", "恶心", "呕吐", "反酸", "黑便"],
        "ite": ["肝功能", "血淀粉酶", "便常规", "粪便隐血试验", "乙肝表面抗原", "13C尿素呼气试验"],
        "dep": ["消化内科", "感染科", "普外科", "消化内镜中心"],
        "uses": [("胃镜", "胃镜检查"), ("十二指肠镜", "ERCP"), ("腹腔镜", "腹腔镜胆囊切除术"),
                 ("胃管", "胃肠减压")],
        "pro": ["结肠镜检查", "内镜下黏膜剥离术"],
        "bsym": (["上腹部", "右上腹", "剑突下"], ["疼痛", "胀痛", "隐痛", "不适"]),
        "bdis": (["胃窦", "直肠"], ["恶性肿瘤", "良性肿瘤"]),
        "bpro": (["上腹部", "盆腔"], ["超声检查", "增强CT检查", "MRI检查"]),
        "scan": {"胃窦": ["上腹部"], "直肠": ["盆腔"]},
    },
    "cardio": {
        "diseases": {
            "原发性高血压": ([], ["硝苯地平", "美托洛尔"]),
            "冠状动脉粥样硬化性心脏病": ([], ["阿司匹林", "氯吡格雷"]),
            "急性心肌梗死": ([], ["阿司匹林", "氯吡格雷"]),
            "心房颤动": ([], ["华法林", "美托洛尔"]),
            "慢性心力衰竭": ([], ["呋塞米", "美托洛尔"]),
            "感染性心内膜炎": (["草绿色链球菌", "金黄色葡萄球菌"], ["万古霉素", "头孢曲松"]),
        },
        "sym": ["心悸", "胸闷", "晕厥", "头晕", "夜间阵发性呼吸困难", "活动后气促"],
        "ite": ["肌钙蛋白I", "脑钠肽", "心肌酶谱", "凝血酶原时间", "LDL-C"],
        "dep": ["心血管内科", "心内科", "急诊科", "CCU"],
        "uses": [("冠脉支架", "经皮冠状动脉介入治疗"), ("除颤仪", "电复律"),
                 ("心脏起搏器", "永久起搏器植入术"), ("动态心电图记录仪", "动态心电图监测")],
        "pro": ["冠状动脉造影", "心脏射频消融术"],
        "equ": ["心电监护仪"],
        "bsym": (["心前区", "胸骨后"], ["疼痛", "闷痛", "不适"]),
        "bdis": (["二尖瓣", "主动脉瓣"], ["狭窄", "关闭不全"]),
        "bpro": (["心脏", "冠状动脉"], ["超声检查", "CT血管造影", "MRI检查"]),
        "scan": {"二尖瓣": ["心脏"], "主动脉瓣": ["心脏"]},
    },
    "endocrine": {
        "diseases": {
            "2型糖尿病": ([], ["二甲双胍", "阿卡波糖"]),
            "1型糖尿病": ([], ["甘精胰岛素"]),
            "甲状腺功能亢进症": ([], ["甲巯咪唑"]),
            "桥本甲状腺炎": ([], ["左甲状腺素钠"]),
            "痛风": ([], ["非布司他"]),
            "骨质疏松症": ([], ["阿仑膦酸钠"]),
        },
        "sym": ["多饮多尿", "口干", "体重下降", "乏力", "视物模糊", "怕热多汗"],
        "ite": ["空腹血糖", "餐后2小时血糖", "糖化血红蛋白", "HbA1c", "促甲状腺激素", "TSH", "血尿酸"],
        "dep": ["内分泌科", "内分泌代谢科", "老年医学科", "内分泌与代谢病科"],
        "uses": [("胰岛素泵", "胰岛素强化治疗"), ("动态血糖监测仪", "动态血糖监测"),
                 ("血糖仪", "指尖血糖监测")],
        "pro": ["甲状腺次全切除术", "放射性碘治疗", "骨密度测定"],
        "equ": ["胰岛素笔"],
        "bsym": (["双足", "双手"], ["麻木", "刺痛", "发凉"]),
        "bdis": (["甲状腺左叶", "甲状腺右叶", "肾上腺"], ["结节", "腺瘤"]),
        "bpro": (["甲状腺", "颈部", "肾上腺"], ["超声检查", "增强CT检查"]),
        "scan": {"甲状腺左叶": ["甲状腺", "颈部"], "甲状腺右叶": ["甲状腺", "颈部"], "肾上腺": ["肾上腺"]},
    },
    "renal": {
        "diseases": {
            "尿路感染": (["大肠埃希菌", "奇异变形杆菌", "粪肠球菌"], ["磷霉素氨丁三醇", "左氧氟沙星"]),
            "急性肾小球肾炎": (["溶血性链球菌"], ["青霉素", "呋塞米"]),
            "肾病综合征": ([], ["泼尼松", "环磷酰胺"]),
            "慢性肾脏病": ([], ["缬沙坦"]),
            "IgA肾病": ([], ["缬沙坦", "泼尼松"]),
            "前列腺增生": ([], ["坦索罗辛"]),
        },
        "sym": ["少尿", "尿频", "尿急", "尿痛", "肉眼血尿", "泡沫尿"],
        "ite": ["尿常规", "肾功能", "血肌酐", "尿素氮", "24小时尿蛋白定量", "血清钾", "eGFR"],
        "dep": ["肾内科", "肾脏病科", "泌尿外科", "血液净化中心"],
        "uses": [("透析器", "血液透析"), ("腹膜透析管", "腹膜透析"), ("导尿管", "导尿术"),
                 ("输尿管支架管", "输尿管镜碎石术")],
        "pro": ["肾穿刺活检术", "经尿道前列腺电切术"],
        "bsym": (["右侧腰部", "下腹部"], ["疼痛", "胀痛", "绞痛"]),
        "bdis": (["左肾", "膀胱", "右输尿管上段"], ["结石", "恶性肿瘤"]),
        "bpro": (["双肾", "泌尿系"], ["超声检查", "CT检查"]),
        "scan": {"左肾": ["双肾", "泌尿系"], "膀胱": ["泌尿系"], "右输尿管上段": ["泌尿系"]},
    },
    "neuro": {
        "diseases": {
            "急性缺血性脑卒中": ([], ["阿替普酶", "阿司匹林"]),
            "帕金森病": ([], ["多巴丝肼"]),
            "癫痫": ([], ["丙戊酸钠", "左乙拉西坦"]),
            "病毒性脑炎": (["单纯疱疹病毒"], ["阿昔洛韦"]),
            "隐球菌性脑膜炎": (["新型隐球菌"], ["两性霉素B"]),
            "流行性乙型脑炎": (["乙型脑炎病毒"], []),
        },
        "sym": ["意识模糊", "抽搐", "言语不清", "肢体无力", "静止性震颤", "记忆力下降"],
        "ite": ["脑脊液常规", "脑脊液生化", "同型半胱氨酸", "血清钠"],
        "dep": ["神经内科", "神经外科", "卒中中心", "康复医学科"],
        "uses": [("取栓支架", "机械取栓术"), ("脑电图仪", "脑电图检查"), ("颅内压监测仪", "颅内压监测")],
        "pro": ["腰椎穿刺术", "静脉溶栓", "脑血管造影"],
        "equ": ["气垫床"],
        "bsym": (["头部", "枕部"], ["胀痛", "疼痛", "搏动性疼痛"]),
        "bdis": (["左侧基底节区", "右侧额叶", "脑干"], ["梗死", "出血"]),
        "bpro": (["头颅"], ["CT检查", "MRI检查", "磁共振血管成像"]),
        "scan": {"左侧基底节区": ["头颅"], "右侧额叶": ["头颅"], "脑干": ["头颅"]},
    },
    "pediatric": {
        "diseases": {
            "手足口病": (["肠道病毒71型", "EV71", "柯萨奇病毒A16型"], ["对乙酰氨基酚", "布洛芬"]),
            "水痘": (["水痘-带状疱疹病毒"], ["阿昔洛韦"]),
            "传染性单核细胞增多症": (["EB病毒"], ["更昔洛韦"]),
            "小儿腹泻": (["轮状病毒"], ["口服补液盐", "蒙脱石散"]),
            "流行性感冒": (["甲型流感病毒"], ["奥司他韦"]),
            "川崎病": ([], ["丙种球蛋白", "阿司匹林"]),
            "鹅口疮": (["白色念珠菌"], ["制霉菌素"]),
        },
        "sym": ["发热", "高热不退", "皮疹", "流涕", "咽痛", "精神萎靡"],
        "ite": ["血培养", "血清总胆红素", "异型淋巴细胞计数", "白细胞计数", "血小板计数"],
        "dep": ["儿科", "小儿感染科", "儿童重症监护室", "儿科急诊"],
        "uses": [("蓝光箱", "蓝光治疗"), ("输液泵", "静脉补液"), ("留置针", "静脉输液")],
        "pro": ["隔离治疗", "骨髓穿刺术", "物理降温"],
        "equ": ["婴儿暖箱"],
        "bsym": (["手掌", "足底", "躯干"], ["皮疹", "疱疹", "瘙痒"]),
        "bdis": (["颈部淋巴结", "肠系膜淋巴结"], ["炎"]),
        "bpro": (["腹部", "颈部", "胸部"], ["超声检查"]),
        "scan": {"颈部淋巴结": ["颈部"], "肠系膜淋巴结": ["腹部"]},
    },
    "rheumortho": {
        "diseases": {
            "类风湿关节炎": ([], ["甲氨蝶呤", "来氟米特"]),
            "系统性红斑狼疮": ([], ["羟氯喹", "甲泼尼龙"]),
            "强直性脊柱炎": ([], ["塞来昔布"]),
            "骨关节炎": ([], ["塞来昔布"]),
            "化脓性关节炎": (["金黄色葡萄球菌", "淋病奈瑟菌"], ["万古霉素", "头孢曲松"]),
            "布鲁氏菌病": (["布鲁氏菌"], ["多西环素", "利福平"]),
            "脊柱结核": (["结核分枝杆菌"], ["异烟肼", "利福平"]),
        },
        "sym": ["关节晨僵", "活动受限", "下肢放射痛", "光过敏", "口腔溃疡"],
        "ite": ["类风湿因子", "抗环瓜氨酸肽抗体", "抗核抗体", "补体C3", "HLA-B27", "红细胞沉降率"],
        "dep": ["风湿免疫科", "骨科", "脊柱外科", "运动医学科"],
        "uses": [("骨科钢板", "切开复位内固定术"), ("人工髋关节假体", "全髋关节置换术"),
                 ("关节镜", "关节镜下清理术"), ("助行器", "康复训练")],
        "pro": ["关节腔穿刺术", "理疗"],
        "equ": ["颈托"],
        "bsym": (["双手近端指间关节", "左膝关节", "腰背部"], ["疼痛", "肿痛", "肿胀"]),
        "bdis": (["股骨颈", "桡骨远端"], ["骨折"]),
        "bpro": (["腰椎", "髋关节", "腕关节"], ["X线检查", "MRI检查", "CT检查"]),
        "scan": {"股骨颈": ["髋关节"], "桡骨远端": ["腕关节"]},
    },
}

# Nested slot -> (outer type, inner type). The inner microbe of {mite} is the sentence's microbe.
_NESTED: dict[str, tuple[str, str]] = {
    "bsym": ("sym", "bod"),
    "bdis": ("dis", "bod"),
    "bpro": ("pro", "bod"),
    "mite": ("ite", "mic"),
}
_MITE_VIRUS = ["核酸检测", "抗体检测", "抗原检测"]
_MITE_OTHER = ["培养", "核酸检测", "抗原检测"]

_AGE_RANGE = {"pediatric": (1, 12)}
_FILLERS: dict[str, list[str]] = {
    "days": ["3天", "三天", "2周", "1个月", "半年", "十余天", "5天", "两天", "1周", "3个月"],
    "temp": ["37.8", "38.2", "38.5", "39.0", "39.4", "40.1"],
    "sex": ["男", "女"],
    "times": ["1", "2", "3"],
    "num": ["2", "3", "5", "7", "10", "14"],
    "weeks": ["2", "4", "6", "8"],
    "bp": ["150/95", "168/100", "132/86", "185/110", "118/76"],
    "hr": ["62", "78", "96", "112", "124"],
    "size": ["1.2×0.8", "2.5×1.9", "0.6×0.5", "3.1×2.4"],
}

# ---------------------------------------------------------------------------------------------
# Templates. Entity slots: {dis} {sym} {pro} {equ} {dru} {ite} {bod} {dep} {mic}, {organ} (a
# bod from the domain's organ list) and the nested {bsym} {bdis} {bpro} {mite}. The first
# {dis} is the focus disease: {dru} and {mic} in the same sentence are drugs for it and a
# microbe causing it; a sentence with both {equ} and {pro} pairs the device with its
# procedure. Repeated slots of one type get distinct terms. {days} {age} ... are unannotated
# fillers. A "儿|" prefix restricts a template to the paediatric domain.
# ---------------------------------------------------------------------------------------------

TEMPLATES: list[str] = [
    "患者因{sym}{days}就诊于{dep}，查{ite}提示异常，诊断为{dis}。",
    "{mic}感染是{dis}的常见病因，可予{dru}治疗。",
    "行{pro}时需使用{equ}。",
    "{dru}可用于治疗{dis}。",
    "患者{sex}，{age}岁，因“{bsym}{days}”入院。",
    "{dis}患者常出现{sym}、{sym}等表现。",
    "入院后完善{ite}、{ite}及{bpro}，结果提示{bdis}。",
    "{mite}结果阳性，建议至{dep}进一步诊治。",
    "体温{temp}℃，伴{sym}，无{sym}。",
    "{dis}的典型症状为{sym}。",
    "经{dep}会诊后建议行{pro}。",
    "予{dru}治疗，每日{times}次。",
    "{sym}是{dis}常见的首发症状。",
    "{bpro}示{bdis}，建议{dep}随诊。",
    "{bsym}伴{sym}{days}。",
    "既往有{dis}病史{num}年，长期服用{dru}。",
    "{mic}可引起{dis}，重症患者需转入{dep}治疗。",
    "{dis}的诊断需结合{ite}及{bpro}结果。",
    "儿|患儿{age}岁，{sym}{days}，伴{sym}，门诊拟“{dis}”收入{dep}。",
    "血压{bp}mmHg，心率{hr}次/分，{organ}未见明显异常。",
    "{dru}联合{dru}是治疗{dis}的常用方案。",
    "{dis}合并{mic}感染时，应及时完善{ite}。",
    "{bpro}提示{organ}未见明显异常。",
    "{pro}需要使用{equ}，操作前应向患者充分告知。",
    "查{ite}：{ite}升高，{ite}正常。",
    "{mite}可辅助诊断{mic}感染。",
    "诊断：1.{dis}；2.{dis}；3.{bdis}。",
    "今日患者{sym}较前好转，继续{dru}治疗，明日复查{ite}。",
    "{dep}门诊随访，{ite}控制在目标范围内。",
    "行{pro}后{days}，患者出现{bsym}。",
    "{dis}患者行{pro}前需评估{ite}。",
    "{sym}、{sym}、{sym}为{dis}的主要表现。",
    "由{mic}所致的{dis}需尽早规范治疗。",
    "建议行{bpro}以明确{organ}病变性质。",
    "{age}岁{sex}性患者，{dis}病史{num}年，本次因{bsym}{days}再次入院，入院后查{ite}明显异常，"
    "予{dru}及{dru}治疗后症状缓解，拟择期于{dep}行{pro}。",
    "服用{dru}期间如出现{sym}加重，应及时就诊于{dep}。",
    "{bpro}未见明显异常，{ite}阴性，暂不支持{dis}诊断。",
    "{mic}感染者应注意隔离，并完善{ite}。",
    "患者于{dep}行{pro}，过程顺利，返回病房。",
    "{sym}{days}，加重伴{sym}1天。",
    "{pro}过程中使用{equ}，应密切观察有无{sym}。",
    "{dis}是{dep}的常见病、多发病。",
    "在{equ}辅助下行{pro}，同时给予{dru}治疗。",
    "{mic}是{dis}的主要病原体，{mite}有助于早期诊断。",
    "出院诊断：{dis}、{bdis}。出院带药：{dru}、{dru}。",
    "{ite}是评估{dis}病情的重要指标。",
    "{bsym}、{sym}是本次就诊的主要原因。",
    "患者拒绝行{pro}，要求转入{dep}保守治疗。",
    "查体：神志清，精神可，{organ}未见明显异常。",
    "{pro}后需定期复查{ite}和{bpro}。",
    "近{days}{sym}明显，自服{dru}无效。",
    "{dru}与{dru}联用治疗{dis}时需注意药物不良反应。",
    "{dis}的一线治疗药物是{dru}。",
    "本例患者{mite}阳性，最终确诊为{dis}，经{dru}规范治疗{weeks}周后痊愈出院。",
    "{equ}可用于{pro}。",
    "{sym}待查。",
    "{bdis}病史{num}年，定期于{dep}复查。",
    "行{pro}前需完善{ite}，并签署知情同意书。",
    "予{dru} bid，{days}后复查{ite}。",
    "患者于{days}前无明显诱因出现{bsym}，呈持续性，伴{sym}、{sym}，无{sym}，于当地医院行{bpro}提示{bdis}，"
    "为进一步诊治来我院{dep}就诊，门诊以“{dis}”收入院。",
    "送检{mite}，结果回报阳性，结合临床诊断为{dis}。",
    "行{pro}需在{equ}辅助下完成，术后复查{ite}。",
    "{mic}感染可表现为{sym}及{sym}。",
    "{bpro}：{bdis}。",
    "{organ}病变需结合{ite}综合判断。",
    "为明确病原，送检{ite}及{mite}。",
    "{bpro}示{organ}见一大小约{size}cm的低密度影。",
    "儿|患儿{age}岁，因{sym}{days}由家长带至{dep}就诊，查{mite}阳性，诊断为{dis}。",
    "主诉：{bsym}{days}。",
    "转入ICU后{ite}逐渐恢复正常，{sym}消失。",
    "门诊以“{dis}”收入{dep}。",
    "家属诉患者{sym}{days}，伴{bsym}，未予重视。",
    "{dis}高危人群应定期复查{ite}及{bpro}。",
    "入院诊断：{dis}；{bdis}。",
    "复查{ite}较前下降。",
    "{pro}中所用的{equ}需严格消毒。",
    "本院{dep}现有{equ}{num}台，可满足{pro}需求。",
    "因{equ}故障，{pro}推迟进行。",
    "{equ}是开展{pro}的必备设备。",
]

# Sentences for the prediction demo (unannotated). Some reuse demo terms, some are new.
PREDICT_SENTENCES: list[str] = [
    "患者男，56岁，反复上腹部隐痛2年，近1周出现黑便，拟行胃镜检查。",
    "患儿发热伴皮疹3天，咽拭子提示肠道病毒感染，收入儿科隔离治疗。",
    "糖尿病患者应定期监测糖化血红蛋白，必要时使用胰岛素泵控制血糖。",
    "胸部CT检查提示右下肺感染，给予头孢呋辛抗感染治疗。",
    "因突发言语不清4小时急诊入院，头颅MRI检查示左侧额叶梗死。",
    "尿常规可见白细胞升高，尿培养检出大肠埃希菌，诊断为急性膀胱炎。",
    "类风湿关节炎患者长期服用甲氨蝶呤，需每月复查肝功能。",
    "行冠状动脉造影后植入冠脉支架一枚，术后予替格瑞洛抗血小板治疗。",
    "甲状腺超声检查发现甲状腺右叶结节，建议至甲状腺外科进一步评估。",
    "老年女性，跌倒后右髋部疼痛、活动受限，X线检查提示股骨颈骨折。",
    "慢性肾脏病患者出现乏力、纳差，查血肌酐明显升高，转肾内科行血液透析。",
    "肺结核患者需规范服用异烟肼和利福平，并定期复查痰培养。",
]

_SLOT = re.compile(r"\{(\w+)\}")
_PEDIATRIC_ONLY = "儿|"


# ---------------------------------------------------------------------------------------------
# Term pools and the held-out split
# ---------------------------------------------------------------------------------------------


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _domain_pools(domain: dict[str, Any]) -> dict[str, list[str]]:
    """Every term of one domain by type (nested parts included), in first-seen order."""
    diseases = domain["diseases"]
    uses = domain["uses"]
    return {
        "dis": list(diseases),
        "sym": list(domain["sym"]),
        "pro": _unique([p for _, p in uses] + domain.get("pro", [])),
        "equ": _unique([e for e, _ in uses] + domain.get("equ", [])),
        "dru": _unique([d for _, drus in diseases.values() for d in drus] + domain.get("dru", [])),
        "ite": list(domain["ite"]),
        "bod": _unique(domain["bsym"][0] + domain["bdis"][0] + domain["bpro"][0] + domain.get("bod", [])),
        "dep": list(domain["dep"]),
        "mic": _unique([m for mics, _ in diseases.values() for m in mics] + domain.get("mic", [])),
    }


def term_lists() -> dict[str, list[str]]:
    """All terms per entity type (union over the domains, first-seen order)."""
    out: dict[str, list[str]] = {t: [] for t in ENTITY_TYPES}
    for domain in DOMAINS.values():
        for t, terms in _domain_pools(domain).items():
            out[t] = _unique(out[t] + terms)
    return out


def _compute_held_out() -> dict[str, frozenset[str]]:
    """Deterministically hold out ~HOLDOUT_FRACTION of every domain's term lists.

    Lists are visited in a fixed order (the nested bod lists first, then each domain's
    per-type lists); a term shared by several lists keeps the first decision, and a list keeps
    at least one training term, so the training split can still fill every template.
    """
    rng = random.Random(_HOLDOUT_SEED)
    decided: dict[tuple[str, str], bool] = {}
    lists: list[tuple[str, list[str]]] = []
    for domain in DOMAINS.values():
        lists += [("bod", list(domain[slot][0])) for slot in ("bsym", "bdis", "bpro")]
        lists += list(_domain_pools(domain).items())
    for t, terms in lists:
        target = max(1, round(len(terms) * HOLDOUT_FRACTION)) if len(terms) >= 3 else 0
        held = sum(decided.get((t, x)) is True for x in terms)
        train = sum(decided.get((t, x)) is False for x in terms)
        undecided = [x for x in terms if (t, x) not in decided]
        rng.shuffle(undecided)
        for i, x in enumerate(undecided):
            make_held = held < target and train + (len(undecided) - i - 1) >= 1
            decided[(t, x)] = make_held
            held += make_held
            train += not make_held
    out: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
    for (t, x), is_held in decided.items():
        if is_held:
            out[t].add(x)
    return {t: frozenset(v) for t, v in out.items()}


_HELD_OUT = _compute_held_out()


def held_out_terms() -> dict[str, frozenset[str]]:
    """Terms per type that the training split never uses (the dev split favours them)."""
    return dict(_HELD_OUT)


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


class _NoTerms(Exception):
    """The domain has no (split-permitted) term for a slot of the template."""


class _Filler:
    """Fills one template in one domain, choosing terms according to the split."""

    def __init__(self, rng: random.Random, domain_name: str, split: str, slots: list[str]):
        self.rng = rng
        self.domain_name = domain_name
        self.domain = DOMAINS[domain_name]
        self.pools = _domain_pools(self.domain)
        self.split = split
        self.has_dis = "dis" in slots
        self.n_dru = slots.count("dru")
        self.needs_mic = "mic" in slots or "mite" in slots
        self.pair_use = "equ" in slots and "pro" in slots
        self.scan_finding = "bpro" in slots and ("bdis" in slots or "organ" in slots)
        self.finding: str | None = None
        self.used: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
        self.used_held_out = False
        self.focus: str | None = None
        self.focus_shown = False
        self.mic: str | None = None
        self.use: tuple[str, str] | None = None
        self.paired: set[str] = set()

    # -- choosing terms -----------------------------------------------------------------------

    def allowed(self, t: str, term: str) -> bool:
        return self.split != "train" or term not in _HELD_OUT[t]

    def choose(self, t: str, terms: list[str], distinct: bool = True) -> str:
        cands = [x for x in terms if self.allowed(t, x)]
        if distinct:
            cands = [x for x in cands if x not in self.used[t]] or cands
        if not cands:
            raise _NoTerms(t)
        if self.split == "dev":
            held = [x for x in cands if x in _HELD_OUT[t]]
            if held and self.rng.random() < 0.5:
                cands = held
        term = self.rng.choice(cands)
        self.note(t, term)
        return term

    def note(self, t: str, term: str) -> None:
        self.used[t].add(term)
        if term in _HELD_OUT[t]:
            self.used_held_out = True

    def focus_disease(self) -> str:
        if self.focus is None:
            diseases = self.domain["diseases"]

            def ok(d: str, k: int) -> bool:
                mics, drus = diseases[d]
                if self.needs_mic and not any(self.allowed("mic", m) for m in mics):
                    return False
                return sum(self.allowed("dru", x) for x in drus) >= k

            k = min(self.n_dru, 2)
            cands = [d for d in diseases if ok(d, k)] or [d for d in diseases if ok(d, min(k, 1))]
            self.focus = self.choose("dis", cands)
        return self.focus

    def microbe(self) -> str:
        if self.mic is None:
            pool = self.domain["diseases"][self.focus_disease()][0] if self.has_dis else self.pools["mic"]
            self.mic = self.choose("mic", pool)
        return self.mic

    def use_pair(self) -> tuple[str, str]:
        """The (device, procedure) pair of a sentence that has both an {equ} and a {pro}."""
        if self.use is None:
            pairs = [(e, p) for e, p in self.domain["uses"] if self.allowed("equ", e) and self.allowed("pro", p)]
            if not pairs:
                raise _NoTerms("equ/pro")
            if self.split == "dev":
                held = [(e, p) for e, p in pairs if e in _HELD_OUT["equ"] or p in _HELD_OUT["pro"]]
                if held and self.rng.random() < 0.5:
                    pairs = held
            self.use = self.rng.choice(pairs)
            self.note("equ", self.use[0])
            self.note("pro", self.use[1])
        return self.use

    def finding_part(self) -> str:
        """The body part of the sentence's finding ({bdis} or {organ}), chosen once."""
        if self.finding is None:
            self.finding = self.choose("bod", self.domain["bdis"][0], distinct=False)
        return self.finding

    # -- slots --------------------------------------------------------------------------------

    def plain(self, t: str) -> str:
        if t == "dis":
            if self.focus_shown:  # a second disease in the sentence
                return self.choose("dis", self.pools["dis"])
            self.focus_shown = True
            return self.focus_disease()
        if t == "dru" and self.has_dis:
            drus = self.domain["diseases"][self.focus_disease()][1]
            fresh = [x for x in drus if self.allowed("dru", x) and x not in self.used["dru"]]
            return self.choose("dru", fresh if fresh else self.pools["dru"])
        if t == "mic":
            return self.microbe()
        if t in ("equ", "pro") and self.pair_use and t not in self.paired:
            self.paired.add(t)  # the first equ and the first pro come from one pair
            return self.use_pair()[0 if t == "equ" else 1]
        return self.choose(t, self.pools[t])

    def slot(self, name: str) -> tuple[str, list[tuple[int, int, str]]]:
        """(string, [(start, end, type)] relative to the string) for one slot."""
        if name in ENTITY_TYPES:
            term = self.plain(name)
            return term, [(0, len(term), name)]
        if name == "organ":
            term = self.finding_part()
            return term, [(0, len(term), "bod")]
        if name in _NESTED:
            outer, inner = _NESTED[name]
            if name == "mite":
                part = self.microbe()
                suffixes = _MITE_VIRUS if ("病毒" in part or part.isascii()) else _MITE_OTHER
            elif name == "bdis":
                part, suffixes = self.finding_part(), self.domain["bdis"][1]
            elif name == "bpro" and self.scan_finding:  # image the region of the finding
                part = self.choose("bod", self.domain["scan"][self.finding_part()], distinct=False)
                suffixes = self.domain["bpro"][1]
            else:
                parts, suffixes = self.domain[name]
                part = self.choose(inner, parts, distinct=False)
            text = part + self.rng.choice(suffixes)
            return text, [(0, len(text), outer), (0, len(part), inner)]
        if name == "age":
            lo, hi = _AGE_RANGE.get(self.domain_name, (18, 86))
            return str(self.rng.randint(lo, hi)), []
        if name in _FILLERS:
            return self.rng.choice(_FILLERS[name]), []
        raise KeyError(f"unknown template slot {{{name}}}")


def _parse(template: str) -> tuple[str, list[str], bool]:
    pediatric_only = template.startswith(_PEDIATRIC_ONLY)
    body = template[len(_PEDIATRIC_ONLY):] if pediatric_only else template
    return body, _SLOT.findall(body), pediatric_only


def _fill(body: str, filler: _Filler) -> tuple[str, list[Entity]]:
    """Assemble the sentence left to right, recording each entity's offsets as it is placed."""
    pieces: list[str] = []
    entities: list[Entity] = []
    pos = 0
    for i, chunk in enumerate(_SLOT.split(body)):
        if i % 2 == 0:  # literal text between slots
            text, spans = chunk, []
        else:
            text, spans = filler.slot(chunk)
        for s, e, t in spans:
            entities.append(Entity(pos + s, pos + e, t, text[s:e]))
        pieces.append(text)
        pos += len(text)
    return "".join(pieces), sorted(entities, key=lambda e: (e.start, -e.end, e.type))


def _has_entity_slot(slots: list[str]) -> bool:
    return any(s in ENTITY_TYPES or s in _NESTED or s == "organ" for s in slots)


def _generate(n: int, rng: random.Random, split: str, exclude: set[str] | None = None,
              id_prefix: str = "demo-") -> list[Document]:
    if split not in ("all", "train", "dev"):
        raise ValueError(f"split must be 'all', 'train' or 'dev', not {split!r}")
    parsed = [_parse(t) for t in TEMPLATES]
    seen: set[str] = set(exclude or ())
    docs: list[Document] = []
    order: list[int] = []
    width = max(4, len(str(n)))
    misses = 0
    while len(docs) < n:
        if not order:  # cycle through all templates, in a fresh random order each round
            order = list(range(len(parsed)))
            rng.shuffle(order)
        body, slots, pediatric_only = parsed[order.pop()]
        made = None
        for _ in range(20):
            domain = "pediatric" if pediatric_only else rng.choice(list(DOMAINS))
            filler = _Filler(rng, domain, split, slots)
            try:
                text, entities = _fill(body, filler)
            except _NoTerms:
                continue
            if text in seen:
                continue
            # dev: most sentences should contain at least one held-out term
            if split == "dev" and _has_entity_slot(slots) and not filler.used_held_out and rng.random() < 0.8:
                continue
            made = (text, entities)
            break
        if made is None:
            misses += 1
            if misses > 20 * len(parsed):
                raise RuntimeError(f"cannot make {n} distinct demo sentences (made {len(docs)})")
            continue
        seen.add(made[0])
        docs.append(Document(text=made[0], entities=made[1], id=f"{id_prefix}{len(docs) + 1:0{width}d}"))
    return docs


def demo_documents(n: int = 400, seed: int = 0, split: str = "all") -> list[Document]:
    """`n` distinct annotated demo sentences, deterministic in `seed`; ids "demo-0001", ....

    `split` picks the terms: "all" (every term), "train" (never a held-out term) or "dev"
    (held-out terms favoured). Offsets are end exclusive, as everywhere in lingshu.
    """
    return _generate(n, random.Random(seed), split)


def write_demo(directory: str | Path, n: int = 400, dev_fraction: float = 0.2,
               seed: int = 0) -> dict[str, Path]:
    """Write the demo set in CMeEE layout under `directory` (created if missing), through
    lingshu's own writers (lingshu.data).

    Files: demo_train.json and demo_dev.json (CMeEE JSON lists, UTF-8) and demo_predict.txt
    (one unannotated sentence per line).
    `n` sentences in all, `round(n * dev_fraction)` of them in dev. Train never uses a
    held-out term; dev favours them and shares no sentence with train.
    Returns {"train": path, "dev": path, "predict": path}.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), not {dev_fraction}")
    n_dev = int(round(n * dev_fraction))
    train = _generate(n - n_dev, random.Random(seed), "train", id_prefix="demo-train-")
    dev = _generate(n_dev, random.Random(seed * 7919 + 1), "dev",
                    exclude={d.text for d in train}, id_prefix="demo-dev-")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "train": directory / "demo_train.json",
        "dev": directory / "demo_dev.json",
        "predict": directory / "demo_predict.txt",
    }
    from lingshu.data import write_documents

    write_documents(train, paths["train"], "cmeee")
    write_documents(dev, paths["dev"], "cmeee")
    write_documents([Document(t) for t in PREDICT_SENTENCES], paths["predict"], "text")
    return paths
